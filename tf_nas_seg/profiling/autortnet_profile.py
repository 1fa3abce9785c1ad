"""Latency profile of AutoRTNet networks: the supernet's layers, derived networks, sampling.

One walker (`autortnet_layer_entries`) lists the layers of an AutoRTNet network at the
target resolution, for the supernet (every candidate op on every searched edge) or for a
derived network (its depths, kept edges, aggregation ops), in the order
`build_autortnet_network` runs them:

- standardisation and the two stride-2 stem convs;
- per hyper-cell h and kept cell k: the input preprocessing (factorized reduce when
  input 0 has twice the size: cell 1 of every hyper-cell, and cell 0 of hyper-cell h+1
  when h ended at its reduction cell, the two-input rule; else a 1x1 conv), the ops of
  the edges (stride 2 on the reduction cell's input edges), the node sums and the
  concatenation (`cas_profile.cell_entries`, shared with CAS);
- the aggregation cell: 1x1 input projections, one op per edge (stride 2 on the
  downsampling edges), node sums, bilinear resizes of the branch ends, concatenation;
- the fixed CAS multi-scale module (upsampling, per-edge projections, ops, sums, concat);
- the classifier and the upsampling of the logits.

The supernet's entries are those of the deepest network (every cell position) plus the
shallowest (every hyper-cell of depth 1: the factorized-reduce preprocessing the
two-input rule gives the next reduction cell); every derived network's keys are among
them, because a cell's shapes depend only on its position and on whether the previous
hyper-cell ended at its reduction cell.
"""

import functools

from tf_nas_seg.networks.autortnet_layout import (DEFAULT_MULTISCALE, AutoRTNetLayout,
                                                  scale_channels)
from tf_nas_seg.networks.stem import Standardize
from tf_nas_seg.ops.conv_op import ConvOp
from tf_nas_seg.ops.macs import out_size
from tf_nas_seg.ops.op_set import NONE_OPS, get_op_set
from tf_nas_seg.profiling.cas_profile import (CellPlan, _add, _concat, _conv1x1, _layer,
                                              _op_entry, _resize, cell_entries,
                                              derivable_ops, head_entries, sample_cell)
from tf_nas_seg.profiling.layer_entry import EdgeRef, LayerEntry
from tf_nas_seg.profiling.space_profile import SpaceProfile, register_profile
from tf_nas_seg.search.latency_table import fixed_key
from tf_nas_seg.space.aggregation_cell import AGGREGATION_EDGES, AGGREGATION_OUTPUTS
from tf_nas_seg.space.genotype import Genotype

# Op sets of the AutoRTNet search space (the supernet's, see autortnet_supernet).
CELL_OP_SET = "autortnet_cell"
AGGREGATION_OP_SET = "aggregation"
AGGREGATION_TYPE = "aggregation"


def cell_type(h, k):
    """Logit tensor of cell k of hyper-cell h (0-based): the reduction or normal cells."""
    return f"reduce_{h + 1}" if k == 0 else f"normal_{h + 1}"


def autortnet_space(layout, num_classes, height, width, cell_op_set=CELL_OP_SET,
                    aggregation_op_set=AGGREGATION_OP_SET):
    """The JSON-able search-space description of an AutoRTNet table (see SpaceProfile)."""
    return {"method": "autortnet", "cell_op_set": cell_op_set,
            "aggregation_op_set": aggregation_op_set, "layout": layout.to_json(),
            "num_classes": int(num_classes), "height": int(height), "width": int(width)}


def stem_entries(layout, height, width):
    """Standardisation and the two stem convs; returns (entries, s0, s1)."""
    entries = [LayerEntry(fixed_key("standardize", 3, 3, height, width),
                          functools.partial(_layer, Standardize), ((height, width, 3),))]
    c = scale_channels(layout.channels, 1.0)
    shape, states = (height, width, 3), []
    for _ in range(2):
        entries.append(LayerEntry(fixed_key("conv_3x3", shape[2], c, shape[0], shape[1], 2),
                                  functools.partial(_layer, ConvOp, c, ((3, 3),),
                                                    strides=2),
                                  (shape,)))
        shape = (out_size(shape[0], 2), out_size(shape[1], 2), c)
        states.append(shape)
    return entries, states[0], states[1]


def hyper_cell_visits(layout, depths, cells=None, cell_op_set=CELL_OP_SET, stem=None):
    """(h, k, CellPlan, s0, s1) of every cell a network with `depths` runs, in order.

    Args:
        layout: The AutoRTNetLayout.
        depths: Kept cells per hyper-cell.
        cells: {cell type: CellGenotype} of a derived network; None for search cells.
        cell_op_set: Op set of the search cells.
        stem: (s0, s1) stem shapes.

    Returns:
        (visits, [(h, w, c) output of each hyper-cell]).
    """
    s0, s1 = stem
    reduction_prev = True  # stem0 has twice the size of stem1
    visits, outputs = [], []
    for h, depth in enumerate(depths):
        channels = layout.node_channels(h)
        for k in range(depth):
            genotype = None if cells is None else cells[cell_type(h, k)]
            plan = CellPlan.create(cell_op_set if genotype is None else genotype.op_set,
                                   layout.steps, channels, reduction=k == 0,
                                   reduction_prev=reduction_prev, genotype=genotype)
            visits.append((h, k, plan, s0, s1))
            size = (out_size(s1[0], 2), out_size(s1[1], 2)) if k == 0 else s1[:2]
            s0, s1 = s1, size + (plan.output_channels,)
            # Two-input rule: after a hyper-cell that ends at its reduction cell, input 0
            # of the next reduction cell (x_(-1)) has twice the size of input 1.
            reduction_prev = k == 0
        outputs.append(s1)
    return visits, outputs


def aggregation_entries(channels, inputs, edges, outputs, op_set, ops=None):
    """Entries of the aggregation cell over the hyper-cell outputs `inputs` ((h, w, c)).

    A search cell (`ops` None) yields every candidate op of every edge with its EdgeRef
    ("aggregation", edge, op index); a fixed one the op of each edge.
    """
    spec = get_op_set(op_set)
    order = spec.order
    entries = [_conv1x1(order, s[2], channels, s[0], s[1]) for s in inputs]
    sizes = {i: (s[0], s[1]) for i, s in enumerate(inputs)}
    fan_in = {}
    for e, (source, target, stride) in enumerate(edges):
        h, w = sizes[source]
        shape = (h, w, channels)
        if stride > 1:
            h, w = out_size(h, stride), out_size(w, stride)
        sizes.setdefault(target, (h, w))
        fan_in[target] = fan_in.get(target, 0) + 1
        if ops is None:
            for index, name in enumerate(spec.ops):
                if name not in NONE_OPS:
                    entries.append(_op_entry(op_set, name, channels, shape, stride,
                                             EdgeRef(AGGREGATION_TYPE, e, index)))
        else:
            entries.append(_op_entry(op_set, ops[e], channels, shape, stride, None))
    for node in sorted(fan_in):
        n = fan_in[node]
        if n >= 2:
            h, w = sizes[node]
            entries.append(LayerEntry(fixed_key(f"add{n}", channels, channels, h, w),
                                      lambda: _add, ((h, w, channels),) * n))
    h, w = sizes[outputs[0]]
    for node in outputs[1:]:
        if sizes[node] != (h, w):
            sh, sw = sizes[node]
            entries.append(LayerEntry(fixed_key(f"resize_to_{h}x{w}", channels, channels,
                                                sh, sw),
                                      functools.partial(_resize, h, w),
                                      ((sh, sw, channels),)))
    n = len(outputs)
    if n >= 2:
        entries.append(LayerEntry(fixed_key(f"concat{n}", channels, n * channels, h, w),
                                  lambda: _concat, ((h, w, channels),) * n))
    return entries, (h, w, n * channels)


def autortnet_layer_sections(space, depths, cells=None, aggregation=None,
                             multiscale=DEFAULT_MULTISCALE):
    """Entries of an AutoRTNet network, by part (see `autortnet_layer_entries`).

    Returns:
        {"stem": [...], "cells": [(h, k, CellPlan, s0, s1, [...]), ...],
         "aggregation": [...], "multiscale": [...], "head": [...]}.
    """
    layout = AutoRTNetLayout.from_json(space["layout"])
    height, width = space["height"], space["width"]
    stem, s0, s1 = stem_entries(layout, height, width)
    visits, outputs = hyper_cell_visits(layout, depths, cells, space["cell_op_set"],
                                        (s0, s1))
    agg_channels = scale_channels(layout.agg_channels, 1.0)
    if aggregation is None:
        agg, features = aggregation_entries(agg_channels, outputs, AGGREGATION_EDGES,
                                            AGGREGATION_OUTPUTS,
                                            space["aggregation_op_set"])
    else:
        agg, features = aggregation_entries(
            agg_channels, outputs, [tuple(e) for e in aggregation["edges"]],
            tuple(aggregation["outputs"]), aggregation["op_set"], aggregation["ops"])
    ms = CellPlan.create(multiscale.op_set, len(multiscale.nodes),
                         scale_channels(layout.ms_channels, 1.0), multiscale=True,
                         genotype=multiscale)
    return {"stem": stem,
            "cells": [(h, k, plan, a, b, cell_entries(plan, a, b, cell_type(h, k)))
                      for h, k, plan, a, b in visits],
            "aggregation": agg,
            "multiscale": cell_entries(ms, features, outputs[-1], "multiscale"),
            "head": head_entries(features[:2] + (ms.output_channels,),
                                 space["num_classes"], height, width)}


def autortnet_layer_entries(space, depths, cells=None, aggregation=None,
                            multiscale=DEFAULT_MULTISCALE):
    """Entries of an AutoRTNet network (search cells or a derived network) in order.

    Args:
        space: The AutoRTNet space dict (`autortnet_space`).
        depths: Kept cells per hyper-cell.
        cells: {cell type: CellGenotype} of a derived network; None: search cells (every
            candidate op of every edge, EdgeRef cell types "reduce_h" / "normal_h").
        aggregation: The genotype's macro "aggregation" dict; None: the search cell
            (every candidate op of every edge, EdgeRef cell type "aggregation").
        multiscale: CellGenotype of the fixed multi-scale module.

    Returns:
        A list of LayerEntry (keys may repeat).
    """
    sections = autortnet_layer_sections(space, depths, cells, aggregation, multiscale)
    entries = list(sections["stem"])
    for *_, cell in sections["cells"]:
        entries.extend(cell)
    return entries + sections["aggregation"] + sections["multiscale"] + sections["head"]


class AutoRTNetProfile(SpaceProfile):
    """AutoRTNet: stem, three hyper-cells of searched depth, aggregation cell, MSCell, head."""

    method = "autortnet"

    def check_space(self, space):
        for key in ("cell_op_set", "aggregation_op_set", "layout", "num_classes",
                    "height", "width"):
            if key not in space:
                raise ValueError(f"AutoRTNet latency space lacks {key!r}")
        get_op_set(space["cell_op_set"])
        get_op_set(space["aggregation_op_set"])
        self.layout(space)
        return space

    @staticmethod
    def layout(space):
        return AutoRTNetLayout.from_json(space["layout"])

    def op_sets(self, space):
        sets = {}
        for h in range(len(self.layout(space).hyper_cells)):
            sets[cell_type(h, 0)] = space["cell_op_set"]
            sets[cell_type(h, 1)] = space["cell_op_set"]
        sets[AGGREGATION_TYPE] = space["aggregation_op_set"]
        return sets

    def supernet_entries(self, space):
        layout = self.layout(space)
        deepest = autortnet_layer_entries(space, layout.hyper_cells)
        shallowest = autortnet_layer_entries(space, (1,) * len(layout.hyper_cells))
        return deepest + shallowest

    def network_entries(self, space, genotype):
        from tf_nas_seg.networks.autortnet_network import autortnet_spec

        layout, depths, aggregation = autortnet_spec(genotype)
        if layout != self.layout(space):
            raise ValueError(f"the genotype's layout {layout.to_json()} is not the table's "
                             f"search space {space['layout']}")
        cells = {cell_type(h, k): genotype.cell(cell_type(h, k))
                 for h in range(len(depths)) for k in (0, 1)}
        return autortnet_layer_entries(space, depths, cells, aggregation,
                                       genotype.cell("multiscale"))

    def sample_genotype(self, space, rng, op_probabilities=None):
        """A random derived network: depths, cells and aggregation ops.

        Depths are drawn per architecture around a random depth fraction u ~ U(0, 1)
        (depth_h = 1 + Binomial(cells_h - 1, u)), so samples range from all-shallow to
        all-deep networks rather than clustering at the middle.
        """
        layout = self.layout(space)
        op_probabilities = op_probabilities or {}
        cells = {}
        for name, op_set in self.op_sets(space).items():
            if name == AGGREGATION_TYPE:
                ops, p = derivable_ops(op_set, op_probabilities.get(name))
                chosen = [ops[rng.choice(len(ops), p=p)] for _ in AGGREGATION_EDGES]
                continue
            cells[name] = sample_cell(op_set, layout.steps, rng, op_probabilities.get(name))
        cells["multiscale"] = DEFAULT_MULTISCALE
        fraction = rng.uniform()
        depths = [1 + int(rng.binomial(n - 1, fraction)) for n in layout.hyper_cells]
        macro = {"layout": layout.to_json(), "depths": depths,
                 "aggregation": {"op_set": space["aggregation_op_set"],
                                 "edges": [list(e) for e in AGGREGATION_EDGES],
                                 "outputs": list(AGGREGATION_OUTPUTS), "ops": chosen}}
        return Genotype.create("autortnet", cells, macro=macro)

    def build_network(self, space, genotype, batch=1):
        from tf_nas_seg.networks.autortnet_network import build_autortnet_network

        del batch
        return build_autortnet_network(genotype, space["num_classes"],
                                       input_shape=(space["height"], space["width"], 3))


register_profile(AutoRTNetProfile())
