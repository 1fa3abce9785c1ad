"""Latency profile of CAS networks: the supernet's layers, derived networks, sampling."""

import dataclasses
import functools

import keras
import numpy as np

from tf_nas_seg.networks.cas_layout import CASLayout, walk_cell_shapes
from tf_nas_seg.networks.cas_network import build_cas_network
from tf_nas_seg.networks.stem import Standardize
from tf_nas_seg.ops.conv_op import ConvOp
from tf_nas_seg.ops.factorized_reduce import FactorizedReduce
from tf_nas_seg.ops.macs import out_size
from tf_nas_seg.ops.op_set import NONE_OPS, get_op_set
from tf_nas_seg.ops.resize_like import resize_to
from tf_nas_seg.profiling.layer_entry import EdgeRef, LayerEntry, inference_call
from tf_nas_seg.profiling.space_profile import SpaceProfile, register_profile
from tf_nas_seg.search.latency_table import fixed_key, network_key, op_key
from tf_nas_seg.space.genotype import CellGenotype, Edge, Genotype
from tf_nas_seg.space.multi_scale_cell import MultiScaleCell

# Derived cells keep k = 2 incoming edges per node (SPEC section 1): the node sums a
# supernet's derived networks contain.
KEEP_EDGES = 2


def derivable_ops(op_set, probabilities=None):
    """(ops of `op_set` without the no-edge op, their normalised sampling probabilities)."""
    ops = [o for o in get_op_set(op_set).ops if o not in NONE_OPS]
    p = None if probabilities is None else (np.asarray(probabilities, dtype=np.float64)
                                            / np.sum(probabilities))
    return ops, p


def sample_cell(op_set, steps, rng, probabilities=None):
    """A random derived cell: KEEP_EDGES distinct sources per node, an op per edge.

    Args:
        op_set: Op set of the cell.
        steps: Intermediate nodes.
        rng: A numpy Generator.
        probabilities: Optional weights of the derivable ops (None: uniform).
    """
    ops, p = derivable_ops(op_set, probabilities)
    nodes = []
    for j in range(steps):
        sources = sorted(rng.choice(j + 2, size=min(KEEP_EDGES, j + 2), replace=False))
        nodes.append(tuple(Edge(ops[rng.choice(len(ops), p=p)], int(s)) for s in sources))
    return CellGenotype(op_set, tuple(nodes), tuple(range(2, steps + 2)))


def _layer(cls, *args, **kwargs):
    return inference_call(cls(*args, **kwargs))


def _candidate(op_set, op, channels, stride):
    return inference_call(get_op_set(op_set).build(op, channels, stride, affine=True))


def _add(*xs):
    total = xs[0]
    for x in xs[1:]:
        total = total + x
    return total


def _concat(*xs):
    return keras.ops.concatenate(list(xs), axis=-1)


def _resize(height, width):
    return lambda x: resize_to(x, height, width)


def _conv1x1(order, c_in, c_out, h, w):
    name = "conv_1x1" if order == "conv_bn_relu" else "relu_conv_bn_1x1"
    return LayerEntry(fixed_key(name, c_in, c_out, h, w),
                      functools.partial(_layer, ConvOp, c_out, ((1, 1),), order=order),
                      ((h, w, c_in),))


def _op_entry(op_set, op, channels, shape, stride, edge):
    return LayerEntry(op_key(op_set, op, shape[2], channels, shape[0], shape[1], stride),
                      functools.partial(_candidate, op_set, op, channels, stride),
                      (shape,), edge)


@dataclasses.dataclass(frozen=True)
class CellPlan:
    """What the latency walker needs of a cell, without building any Keras layer.

    Attributes:
        op_set: Op set name.
        steps: Intermediate nodes.
        channels: Node channels.
        reduction: Reduction cell (stride-2 input edges).
        reduction_prev: Input 0 is twice the size of input 1 (factorized reduce).
        multiscale: A CAS multi-scale cell (upsampled input 1, per-edge projections).
        edges: ((node, source, op or None), ...): None for a searched edge.
        concat: Concatenated states.
        order: Unit order of the preprocessing convolutions.
    """

    op_set: str
    steps: int
    channels: int
    reduction: bool
    reduction_prev: bool
    multiscale: bool
    edges: tuple
    concat: tuple
    order: str

    @property
    def output_channels(self):
        return self.channels * len(self.concat)

    @classmethod
    def create(cls, op_set, steps, channels, reduction=False, reduction_prev=False,
               multiscale=False, genotype=None):
        """The plan of a search cell (genotype None) or of a fixed cell."""
        if genotype is None:
            edges = tuple((j, i, None) for j in range(steps) for i in range(j + 2))
            concat = tuple(range(2, steps + 2))
        else:
            steps = len(genotype.nodes)
            edges = tuple((j, e.source, e.op) for j, node in enumerate(genotype.nodes)
                          for e in node)
            concat = tuple(genotype.concat)
        return cls(op_set, int(steps), int(channels), bool(reduction),
                   bool(reduction_prev), bool(multiscale), edges, concat,
                   get_op_set(op_set).order)

    @classmethod
    def from_cell(cls, cell):
        """The plan of a `Cell` or `MultiScaleCell` layer."""
        return cls.create(cell.op_set, cell.steps, cell.channels, cell.reduction,
                          cell.reduction_prev, isinstance(cell, MultiScaleCell),
                          cell.genotype)


def cell_entries(plan, s0, s1, cell_type):
    """Entries of one backbone or multi-scale cell (search or fixed) for (h, w, c) inputs.

    A search cell yields every candidate op of every edge (with its EdgeRef, rows in the
    order of `Cell.edge_rows`) and the node sums of its derived cells (k = 2 inputs); a
    fixed cell only its kept ops.
    """
    entries = []
    if plan.multiscale:
        h, w = s0[0], s0[1]
        if (s1[0], s1[1]) != (h, w):
            entries.append(LayerEntry(fixed_key(f"resize_to_{h}x{w}", s1[2], s1[2], s1[0],
                                                s1[1]), functools.partial(_resize, h, w),
                                      ((s1[0], s1[1], s1[2]),)))
    else:
        h, w = s1[0], s1[1]
        if plan.reduction_prev:
            entries.append(LayerEntry(
                fixed_key("factorized_reduce", s0[2], plan.channels, s0[0], s0[1], 2),
                functools.partial(_layer, FactorizedReduce, plan.channels), (s0,)))
        else:
            entries.append(_conv1x1(plan.order, s0[2], plan.channels, s0[0], s0[1]))
        entries.append(_conv1x1(plan.order, s1[2], plan.channels, s1[0], s1[1]))
        if plan.reduction:
            h, w = out_size(h, 2), out_size(w, 2)
    node_shape = (h, w, plan.channels)
    op_names = get_op_set(plan.op_set).ops
    inputs = {}
    for row, (node, source, op) in enumerate(plan.edges):
        shape = node_shape
        if source < 2:
            shape = (h, w, plan.channels) if plan.multiscale else (s1[0], s1[1],
                                                                   plan.channels)
        stride = 2 if plan.reduction and source < 2 else 1
        inputs[node] = inputs.get(node, 0) + 1
        if plan.multiscale and source < 2:
            c_in = (s0 if source == 0 else s1)[2]
            projection = _conv1x1(plan.order, c_in, plan.channels, h, w)
            if op is None:
                projection = dataclasses.replace(projection, edge=EdgeRef(cell_type, row))
            entries.append(projection)
        if op is None:
            for index, name in enumerate(op_names):
                if name not in NONE_OPS:
                    entries.append(_op_entry(plan.op_set, name, plan.channels, shape,
                                             stride, EdgeRef(cell_type, row, index)))
        else:
            entries.append(_op_entry(plan.op_set, op, plan.channels, shape, stride, None))
    searched = any(op is None for _, _, op in plan.edges)
    for node in range(plan.steps):
        n = inputs.get(node, 0)
        if searched:
            n = min(n, KEEP_EDGES)
        if n >= 2:
            entries.append(LayerEntry(fixed_key(f"add{n}", plan.channels, plan.channels,
                                                h, w),
                                      lambda: _add, (node_shape,) * n))
    n = len(plan.concat)
    if n >= 2:
        entries.append(LayerEntry(fixed_key(f"concat{n}", plan.channels,
                                            n * plan.channels, h, w),
                                  lambda: _concat, (node_shape,) * n))
    return entries


def cas_layer_entries(stem_channels, cells, ms_cell, low_level_cell, num_classes, height,
                      width):
    """Entries of a whole CAS network (supernet or derived) at height x width.

    Args:
        stem_channels: Output channels of the stem convolutions.
        cells: Backbone cells in order: `Cell` layers (search or fixed) or CellPlans.
        ms_cell: The `MultiScaleCell` (or its CellPlan), or None.
        low_level_cell: Index of the backbone cell feeding the multi-scale cell.
        num_classes: Classifier outputs.
        height: Input height.
        width: Input width.

    Returns:
        A list of LayerEntry, in execution order (keys may repeat).
    """
    entries = [LayerEntry(fixed_key("standardize", 3, 3, height, width),
                          functools.partial(_layer, Standardize), ((height, width, 3),))]
    h, w, c = height, width, 3
    for stride in (2, 1, 2):
        entries.append(LayerEntry(fixed_key("conv_3x3", c, stem_channels, h, w, stride),
                                  functools.partial(_layer, ConvOp, stem_channels,
                                                    ((3, 3),), strides=stride),
                                  ((h, w, c),)))
        h, w, c = out_size(h, stride), out_size(w, stride), stem_channels
    cells = [c if isinstance(c, CellPlan) else CellPlan.from_cell(c) for c in cells]
    if ms_cell is not None and not isinstance(ms_cell, CellPlan):
        ms_cell = CellPlan.from_cell(ms_cell)
    visits, features = walk_cell_shapes(cells, (h, w, c), ms_cell, low_level_cell)
    for cell, s0, s1 in visits:
        if cell is ms_cell:
            cell_type = "multiscale"
        else:
            cell_type = "reduce" if cell.reduction else "normal"
        entries.extend(cell_entries(cell, s0, s1, cell_type))
    entries.extend(head_entries(features, num_classes, height, width))
    return entries


def head_entries(features, num_classes, height, width):
    """The 1x1 classifier on `features` and the upsampling of the logits to the input."""
    fh, fw, fc = features
    entries = [LayerEntry(
        fixed_key("classifier_1x1", fc, num_classes, fh, fw),
        lambda: inference_call(keras.layers.Conv2D(num_classes, 1)), (features,))]
    if (fh, fw) != (height, width):
        entries.append(LayerEntry(fixed_key(f"resize_to_{height}x{width}", num_classes,
                                            num_classes, fh, fw),
                                  functools.partial(_resize, height, width),
                                  ((fh, fw, num_classes),)))
    return entries


def layout_signature(layout, num_classes):
    """Short text naming a CAS layout and head (part of whole-network keys)."""
    return (f"{layout.layout}-c{layout.channels}-s{layout.stem_channels}-n{layout.steps}"
            f"-l{layout.low_level_cell}-m{layout.ms_channels}x{layout.ms_steps}"
            f"-k{num_classes}")


def _full_cell(op_set, steps, op):
    """A cell with `op` on every edge of the full DAG (CAS's c'_o networks)."""
    # Built directly: `none` is not derivable, so CellGenotype.from_json would refuse it.
    nodes = tuple(tuple(Edge(op, i) for i in range(j + 2)) for j in range(steps))
    return CellGenotype(op_set, nodes, tuple(range(2, steps + 2)))


class CASProfile(SpaceProfile):
    """CAS (and its DARTS-op-set variant): stem, 8 cells, optional MSCell, head."""

    method = "cas"

    def check_space(self, space):
        for key in ("backbone_op_set", "layout", "num_classes", "height", "width"):
            if key not in space:
                raise ValueError(f"CAS latency space lacks {key!r}")
        get_op_set(space["backbone_op_set"])
        if space.get("multiscale_op_set"):
            get_op_set(space["multiscale_op_set"])
        self.layout(space)
        return space

    @staticmethod
    def layout(space):
        return CASLayout(**space["layout"])

    def op_sets(self, space):
        sets = {"normal": space["backbone_op_set"], "reduce": space["backbone_op_set"]}
        if space.get("multiscale_op_set"):
            sets["multiscale"] = space["multiscale_op_set"]
        return sets

    def _entries(self, space, normal=None, reduce=None, multiscale=None):
        layout = self.layout(space)
        op_set = space["backbone_op_set"]
        cells = [CellPlan.create(op_set, layout.steps, spec.channels, spec.reduction,
                                 spec.reduction_prev,
                                 genotype=reduce if spec.reduction else normal)
                 for spec in layout.cells()]
        ms_cell = None
        if space.get("multiscale_op_set"):
            ms_cell = CellPlan.create(space["multiscale_op_set"], layout.ms_steps,
                                      layout.ms_channels, multiscale=True,
                                      genotype=multiscale)
        return cas_layer_entries(layout.stem_channels, cells, ms_cell,
                                 layout.low_level_cell, space["num_classes"],
                                 space["height"], space["width"])

    def supernet_entries(self, space):
        entries = self._entries(space)
        if space.get("multiscale_op_set"):
            # The backbone stage classifies the last cell: one table serves both stages.
            entries += self._entries({**space, "multiscale_op_set": None})[-2:]
        return entries

    def network_entries(self, space, genotype):
        multiscale = genotype.cell("multiscale") if space.get("multiscale_op_set") else None
        return self._entries(space, genotype.cell("normal"), genotype.cell("reduce"),
                             multiscale)

    def _genotype(self, space, cells):
        method = "darts" if space["backbone_op_set"] == "darts" else "cas"
        return Genotype.create(method, cells,
                               macro={"layout": self.layout(space).to_json()})

    def sample_genotype(self, space, rng, op_probabilities=None):
        layout = self.layout(space)
        op_probabilities = op_probabilities or {}
        cells = {}
        for cell_type, op_set in self.op_sets(space).items():
            steps = layout.ms_steps if cell_type == "multiscale" else layout.steps
            cells[cell_type] = sample_cell(op_set, steps, rng,
                                           op_probabilities.get(cell_type))
        return self._genotype(space, cells)

    def build_network(self, space, genotype, batch=1):
        del batch
        return build_cas_network(genotype, space["num_classes"], self.layout(space),
                                 input_shape=(space["height"], space["width"], 3))

    def whole_networks(self, space):
        """CAS sec. 4.1: for each op o of each op set, the network with o on every edge.

        Backbone ops: the backbone without the multi-scale cell (the backbone stage's
        network). Multi-scale ops: the identity backbone with the multi-scale cell, so
        the difference c'_o - c'_id isolates the multi-scale cell.
        """
        layout = self.layout(space)
        signature = layout_signature(layout, space["num_classes"])
        backbone = space["backbone_op_set"]
        result = {}
        for op in get_op_set(backbone).ops:
            cell = _full_cell(backbone, layout.steps, op)
            result[network_key(backbone, op, signature, space["height"],
                               space["width"])] = self._genotype(
                space, {"normal": cell, "reduce": cell})
        ms_set = space.get("multiscale_op_set")
        if ms_set:
            skip = _full_cell(backbone, layout.steps, "skip_connect")
            for op in get_op_set(ms_set).ops:
                result[network_key(ms_set, op, signature, space["height"],
                                   space["width"])] = self._genotype(
                    space, {"normal": skip, "reduce": skip,
                            "multiscale": _full_cell(ms_set, layout.ms_steps, op)})
        return result


register_profile(CASProfile())
