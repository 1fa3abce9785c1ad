"""Network plans: a network's topology as data, built once, read by everything.

A `NetworkPlan` lists what a CAS or AutoRTNet network (a supernet or a derived network)
runs, in order, with every layer's input shapes: the stem convolutions, each cell with
its inputs, `reduction_prev`, strides and genotype (None: a search cell), AutoRTNet's
aggregation cell, the multi-scale cell and the head. It is the one description of a
network's topology:

- the Keras builders (`build_cas_network`, `build_autortnet_network`) and the supernets
  create their layers from it (`build_layers`) and wire them by its state indices;
- MACs (`plan_macs`) and the cost models walk its shapes;
- the latency profiles list their table entries from it (`tf_nas_seg.latency`).

Changing the stem's strides, a layout or the two-input rule here changes all of them
together. A plan is created by `cas_plan` or `autortnet_plan` (or `genotype_plan`), from
a layout, the genotype's cells and an input size; sizes may be None (dynamic).

States: the stem's outputs come first (CAS: the stem's one output; AutoRTNet: the
outputs of its two convolutions), then each cell's output in order, then the
aggregation cell's, then the multi-scale cell's. A cell reads `inputs = (i0, i1)`.
"""

import dataclasses
import functools
from typing import Optional

from tf_nas_seg.networks.autortnet_layout import (DEFAULT_MULTISCALE, AutoRTNetLayout,
                                                  autortnet_spec, scale_channels)
from tf_nas_seg.networks.cas_layout import genotype_layout
from tf_nas_seg.networks.stem import STEM_STRIDES, SegmentationHead, Stem
from tf_nas_seg.ops.conv_op import ConvOp
from tf_nas_seg.ops.macs import out_size
from tf_nas_seg.ops.op_set import get_op_set
from tf_nas_seg.space.aggregation_cell import (AGGREGATION_EDGES, AGGREGATION_OUTPUTS,
                                               AggregationCell, aggregation_node_sizes)
from tf_nas_seg.space.cell import Cell, edge_input_size, node_size
from tf_nas_seg.space.genotype import CellGenotype, GenotypeError
from tf_nas_seg.space.multi_scale_cell import MultiScaleCell
from tf_nas_seg.errors import ConfigError

# Op sets of the AutoRTNet search space.
AUTORTNET_CELL_OP_SET = "autortnet_cell"
AUTORTNET_AGGREGATION_OP_SET = "aggregation"


def autortnet_cell_type(h, k):
    """Cell type (logit tensor, genotype cell) of cell k of hyper-cell h (0-based)."""
    return f"reduce_{h + 1}" if k == 0 else f"normal_{h + 1}"


@dataclasses.dataclass(frozen=True)
class StemPlan:
    """The stem: 3x3 conv-BN-ReLU units applied in sequence to the standardised image.

    Attributes:
        filters: Output channels of every conv.
        strides: Stride of each conv.
        input_shape: (h, w, 3) of the image.
        layer_names: None: one `Stem` layer named "stem" whose output is the one stem
            state (CAS); else one `ConvOp` per conv with these names, each output a state
            (AutoRTNet's stem0 and stem1).
    """

    filters: int
    strides: tuple
    input_shape: tuple
    layer_names: Optional[tuple] = None

    @property
    def conv_input_shapes(self):
        """(h, w, c) entering each conv."""
        shapes, (h, w, c) = [], self.input_shape
        for stride in self.strides:
            shapes.append((h, w, c))
            h, w, c = out_size(h, stride), out_size(w, stride), self.filters
        return shapes

    @property
    def output_shapes(self):
        """(h, w, c) of each stem state."""
        shapes = [(out_size(h, s), out_size(w, s), self.filters)
                  for (h, w, _), s in zip(self.conv_input_shapes, self.strides)]
        return shapes if self.layer_names else shapes[-1:]

    def build_layers(self):
        """The stem's layers in order (unbuilt)."""
        if self.layer_names is None:
            return [Stem(self.filters, self.strides, name="stem")]
        return [ConvOp(self.filters, ((3, 3),), strides=s, name=name)
                for s, name in zip(self.strides, self.layer_names)]

    def convs(self, layers):
        """[(ConvOp, (h, w, c) input)] of the stem `layers` (from `build_layers`)."""
        units = [conv for layer in layers
                 for conv in (layer.convs if isinstance(layer, Stem) else [layer])]
        return list(zip(units, self.conv_input_shapes))


@dataclasses.dataclass(frozen=True)
class CellPlan:
    """A backbone, hyper-cell or multi-scale cell: what it is and what it reads.

    Attributes:
        name: Layer name.
        cell_type: Its logit tensor and genotype cell ("normal", "reduce", "multiscale",
            "reduce_1", ...).
        op_set: Op set name.
        steps: Intermediate nodes.
        channels: Node channels.
        reduction: Reduction cell (stride-2 input edges).
        reduction_prev: Input 0 is twice the size of input 1 (factorized reduce).
        multiscale: A CAS multi-scale cell (upsampled input 1, per-edge projections).
        genotype: The CellGenotype of a fixed cell; None for a search cell.
        s0: (h, w, c) of input 0.
        s1: (h, w, c) of input 1.
        inputs: State indices of inputs 0 and 1.
        group: Hyper-cell index (AutoRTNet), else None.
        index: Index of the cell in its hyper-cell, or in the backbone.
    """

    name: str
    cell_type: str
    op_set: str
    steps: int
    channels: int
    reduction: bool
    reduction_prev: bool
    multiscale: bool
    genotype: Optional[CellGenotype]
    s0: tuple
    s1: tuple
    inputs: tuple
    group: Optional[int] = None
    index: int = 0

    @property
    def searched(self):
        return self.genotype is None

    @property
    def edges(self):
        """((node, source, op or None), ...) in the order of `Cell.edge_rows`."""
        if self.genotype is None:
            return tuple((j, i, None) for j in range(self.steps) for i in range(j + 2))
        return tuple((j, e.source, e.op) for j, node in enumerate(self.genotype.nodes)
                     for e in node)

    @property
    def concat(self):
        if self.genotype is None:
            return tuple(range(2, self.steps + 2))
        return tuple(self.genotype.concat)

    @property
    def order(self):
        return get_op_set(self.op_set).order

    @property
    def output_channels(self):
        return self.channels * len(self.concat)

    @property
    def node_shape(self):
        return node_size(self.s0[:2], self.s1[:2], self.reduction,
                         self.multiscale) + (self.channels,)

    @property
    def output_shape(self):
        return self.node_shape[:2] + (self.output_channels,)

    def edge_shape(self, source):
        """(h, w, c) entering the ops of an edge leaving state `source`."""
        return edge_input_size(source, self.s0[:2], self.s1[:2], self.reduction,
                               self.multiscale) + (self.channels,)

    def stride(self, source):
        return 2 if self.reduction and source < 2 else 1

    def build_layer(self):
        """The cell's Keras layer (unbuilt)."""
        if self.multiscale:
            return MultiScaleCell(self.op_set, self.steps, self.channels,
                                  genotype=self.genotype, name=self.name)
        return Cell(self.op_set, self.steps, self.channels, self.reduction,
                    self.reduction_prev, genotype=self.genotype, name=self.name)


@dataclasses.dataclass(frozen=True)
class AggregationPlan:
    """AutoRTNet's aggregation cell over the hyper-cell outputs.

    Attributes:
        op_set: Op set of its edges.
        channels: Width of every node.
        edges: ((source, target, stride), ...).
        outputs: Nodes concatenated into the output.
        ops: Op of every edge of a fixed cell; None for the search cell.
        input_shapes: (h, w, c) of each input.
        inputs: State indices of the inputs.
    """

    op_set: str
    channels: int
    edges: tuple
    outputs: tuple
    ops: Optional[tuple]
    input_shapes: tuple
    inputs: tuple
    name: str = "aggregation"

    @property
    def node_sizes(self):
        return aggregation_node_sizes(self.edges, self.input_shapes)

    @property
    def output_channels(self):
        return self.channels * len(self.outputs)

    @property
    def output_shape(self):
        return self.node_sizes[self.outputs[0]] + (self.output_channels,)

    def build_layer(self):
        try:
            return AggregationCell(self.op_set, self.channels, edges=self.edges,
                                   outputs=self.outputs, num_inputs=len(self.inputs),
                                   ops=self.ops, name=self.name)
        except (TypeError, ValueError) as e:
            raise GenotypeError(f"macro.aggregation: {e}") from e


@dataclasses.dataclass(frozen=True)
class HeadPlan:
    """The 1x1 classifier on the features, upsampled to the image size."""

    num_classes: int
    features: tuple
    image_size: tuple
    name: str = "head"

    def build_layer(self):
        return SegmentationHead(self.num_classes, name=self.name)


@dataclasses.dataclass(frozen=True)
class NetworkPlan:
    """Every layer of a network in execution order (see the module docstring).

    Attributes:
        method: "cas", "darts" or "autortnet".
        stem: The StemPlan.
        cells: Backbone (CAS) or hyper-cell (AutoRTNet) cells, in order.
        aggregation: AutoRTNet's AggregationPlan, else None.
        ms_cell: The multi-scale CellPlan, or None.
        head: The HeadPlan.
    """

    method: str
    stem: StemPlan
    cells: tuple
    aggregation: Optional[AggregationPlan]
    ms_cell: Optional[CellPlan]
    head: HeadPlan

    @property
    def image_shape(self):
        return self.stem.input_shape

    def all_cells(self):
        return list(self.cells) + ([self.ms_cell] if self.ms_cell is not None else [])

    def hyper_cells(self):
        """[[CellPlan, ...] of each hyper-cell] (AutoRTNet)."""
        groups = {}
        for cell in self.cells:
            groups.setdefault(cell.group, []).append(cell)
        return [groups[g] for g in sorted(groups)]

    def layer_factories(self):
        """{layer name: zero-argument factory of its unbuilt Keras layer}, in order."""
        factories = {}
        for layer in self.stem.build_layers():
            factories[layer.name] = functools.partial(_same, layer)
        for part in (*self.cells, self.aggregation, self.ms_cell, self.head):
            if part is not None:
                factories[part.name] = part.build_layer
        return factories

    def build_layers(self):
        """{layer name: unbuilt Keras layer} of every part, in execution order."""
        return {name: make() for name, make in self.layer_factories().items()}

    def lazy_layers(self):
        """Like `build_layers`, but each layer is created when `run_plan` first asks.

        Layers that create sublayers in `build` draw their initialiser seeds then, so a
        functional model built this way creates every layer just before it runs: the
        order (and so the initial weights for a seed) the builders have always had.
        """
        return _LazyLayers(self.layer_factories())


def _same(layer):
    return layer


class _LazyLayers(dict):
    def __init__(self, factories):
        super().__init__()
        self._factories = factories

    def __missing__(self, name):
        layer = self[name] = self._factories[name]()
        return layer


def run_plan(plan, layers, x, images, cell_weights=None, training=None):
    """Runs `layers` (by plan name) on the standardised image `x` as the plan wires them.

    Args:
        plan: A NetworkPlan.
        layers: {name: layer}: `NetworkPlan.build_layers()` or a model's layers.
        x: Standardised images.
        images: The raw images (the head resizes the logits to their size).
        cell_weights: {cell type: op weights} of the search cells; None for a derived
            network.
        training: Passed to every layer that takes it.

    Returns:
        The logits.
    """
    kwargs = {"training": training}
    states = []
    for layer in _stem_layers(plan, layers):
        x = layer(x, **kwargs)
        states.append(x)
    if plan.stem.layer_names is None:
        states = states[-1:]

    def run_cell(cell):
        a, b = (states[i] for i in cell.inputs)
        layer = layers[cell.name]
        if cell.searched:
            return layer(a, b, cell_weights[cell.cell_type], **kwargs)
        return layer(a, b, **kwargs)

    for cell in plan.cells:
        states.append(run_cell(cell))
    if plan.aggregation is not None:
        agg = plan.aggregation
        inputs = [states[i] for i in agg.inputs]
        if agg.ops is None:
            states.append(layers[agg.name](inputs, cell_weights["aggregation"], **kwargs))
        else:
            states.append(layers[agg.name](inputs, **kwargs))
    if plan.ms_cell is not None:
        states.append(run_cell(plan.ms_cell))
    return layers[plan.head.name](states[-1], images)


def _stem_layers(plan, layers):
    names = plan.stem.layer_names or ("stem",)
    return [layers[name] for name in names]


def plan_macs(plan, layers, include_aggregation_edges=True):
    """Exact MACs of the network `plan` describes (convolutions, `tf_nas_seg.ops.macs`).

    Args:
        plan: A NetworkPlan of a derived network, with static sizes.
        layers: {name: layer} (`NetworkPlan.build_layers()` or a model's layers; built
            or not).
        include_aggregation_edges: False leaves out the aggregation cell's edges (the
            part AutoRTNet's cost term does not cover).
    """
    total = sum(conv.count_macs(shape) for conv, shape in plan.stem.convs(
        _stem_layers(plan, layers)))
    for cell in plan.all_cells():
        total += layers[cell.name].count_macs(cell.s0, cell.s1)
    if plan.aggregation is not None:
        agg = layers[plan.aggregation.name]
        total += agg.input_macs(plan.aggregation.input_shapes)
        if include_aggregation_edges:
            total += sum(agg.edge_macs(plan.aggregation.input_shapes))
    return total + layers[plan.head.name].count_macs(plan.head.features)


# CAS ------------------------------------------------------------------------------------
def cas_plan(layout, num_classes, height=None, width=None, backbone_op_set="cas_backbone",
             multiscale_op_set=None, normal=None, reduce=None, multiscale=None,
             method="cas"):
    """The plan of a CAS network (CAS Fig. 3): stem, backbone cells, MSCell, head.

    Args:
        layout: A CASLayout.
        num_classes: Classifier outputs.
        height: Input height (None: dynamic).
        width: Input width.
        backbone_op_set: Op set of the backbone's search cells (a fixed cell takes its
            genotype's).
        multiscale_op_set: Op set of a searched multi-scale cell; None without one
            unless `multiscale` is given.
        normal: CellGenotype of the normal cells; None: search cells.
        reduce: CellGenotype of the reduction cells; None: search cells.
        multiscale: CellGenotype of a fixed multi-scale cell.
        method: Recorded in the plan ("cas" or "darts").
    """
    stem = StemPlan(layout.stem_channels, STEM_STRIDES, (height, width, 3))
    shape = stem.output_shapes[-1]
    s0 = s1 = shape
    states = [shape]
    cells = []
    for spec in layout.cells():
        genotype = reduce if spec.reduction else normal
        steps = layout.steps if genotype is None else len(genotype.nodes)
        op_set = backbone_op_set if genotype is None else genotype.op_set
        i1 = len(states) - 1
        cell = CellPlan(f"cell_{spec.index}", spec.cell_type, op_set, steps, spec.channels,
                        spec.reduction, spec.reduction_prev, False, genotype, s0, s1,
                        (max(i1 - 1, 0), i1), index=spec.index)
        cells.append(cell)
        states.append(cell.output_shape)
        s0, s1 = s1, cell.output_shape
    features = s1
    ms_cell = None
    if multiscale is not None or multiscale_op_set:
        low = layout.low_level_cell
        op_set = multiscale.op_set if multiscale is not None else multiscale_op_set
        steps = layout.ms_steps if multiscale is None else len(multiscale.nodes)
        ms_cell = CellPlan("ms_cell", "multiscale", op_set, steps, layout.ms_channels,
                           False, False, True, multiscale, cells[low].output_shape, s1,
                           (low + 1, len(states) - 1))
        features = ms_cell.output_shape
    head = HeadPlan(num_classes, features, (height, width))
    return NetworkPlan(method, stem, tuple(cells), None, ms_cell, head)


def cas_genotype_plan(genotype, num_classes, layout=None, input_shape=(None, None, 3)):
    """The plan of the derived CAS network of `genotype` (layout: its macro's)."""
    if layout is None:
        layout = genotype_layout(genotype)
    multiscale = genotype.cell("multiscale") if genotype.has_cell("multiscale") else None
    return cas_plan(layout, num_classes, input_shape[0], input_shape[1],
                    normal=genotype.cell("normal"), reduce=genotype.cell("reduce"),
                    multiscale=multiscale, method=genotype.method)


# AutoRTNet ------------------------------------------------------------------------------
def autortnet_plan(layout, num_classes, height=None, width=None, depths=None, cells=None,
                   aggregation=None, multiscale=DEFAULT_MULTISCALE,
                   cell_op_set=AUTORTNET_CELL_OP_SET,
                   aggregation_op_set=AUTORTNET_AGGREGATION_OP_SET, width_multiplier=1.0):
    """The plan of an AutoRTNet network (AutoRTNet Fig. 2).

    Two stride-2 stem convs; per hyper-cell h, `depths[h]` cells (a reduction cell,
    then normal cells), each reading the last two states, except that the next
    reduction cell after a hyper-cell that ends at cell k reads x_k and x_(k-1) (the
    two-input rule: after a depth-1 hyper-cell, x_(-1) has twice the size, so its
    `reduction_prev`); the aggregation cell over the hyper-cell outputs; the fixed
    multi-scale cell (aggregation output, last hyper-cell); the head.

    Args:
        layout: An AutoRTNetLayout.
        num_classes: Classifier outputs.
        height: Input height (None: dynamic).
        width: Input width.
        depths: Kept cells per hyper-cell; None: every cell (the supernet's).
        cells: {cell type: CellGenotype} of a derived network; None: search cells.
        aggregation: The genotype's macro "aggregation" dict; None: the search cell.
        multiscale: CellGenotype of the multi-scale module.
        cell_op_set: Op set of the search cells.
        aggregation_op_set: Op set of the search aggregation cell.
        width_multiplier: Scales every channel count (rounded, at least 1).
    """
    if not width_multiplier > 0:
        raise ConfigError(f"width_multiplier must be > 0, got {width_multiplier!r}")
    m = float(width_multiplier)
    depths = tuple(layout.hyper_cells if depths is None else depths)
    stem = StemPlan(scale_channels(layout.channels, m), (2, 2), (height, width, 3),
                    ("stem0", "stem1"))
    s0, s1 = stem.output_shapes
    states = [s0, s1]
    plans, outputs = [], []
    reduction_prev = True  # stem0 has twice the size of stem1
    for h, depth in enumerate(depths):
        channels = layout.node_channels(h, m)
        for k in range(depth):
            cell_type = autortnet_cell_type(h, k)
            genotype = None if cells is None else cells[cell_type]
            op_set = cell_op_set if genotype is None else genotype.op_set
            cell = CellPlan(f"hyper_cell_{h + 1}_cell_{k}", cell_type, op_set,
                            layout.steps if genotype is None else len(genotype.nodes),
                            channels, k == 0, reduction_prev, False, genotype, s0, s1,
                            (len(states) - 2, len(states) - 1), group=h, index=k)
            plans.append(cell)
            states.append(cell.output_shape)
            s0, s1 = s1, cell.output_shape
            # The two-input rule: after a hyper-cell that ends at its reduction cell,
            # input 0 of the next reduction cell (x_(-1)) has twice the size of input 1.
            reduction_prev = k == 0
        outputs.append(len(states) - 1)
    if aggregation is None:
        agg = AggregationPlan(aggregation_op_set, scale_channels(layout.agg_channels, m),
                              AGGREGATION_EDGES, AGGREGATION_OUTPUTS, None,
                              tuple(states[i] for i in outputs), tuple(outputs))
    else:
        agg = AggregationPlan(aggregation["op_set"],
                              scale_channels(layout.agg_channels, m),
                              tuple(tuple(e) for e in aggregation["edges"]),
                              tuple(aggregation["outputs"]), tuple(aggregation["ops"]),
                              tuple(states[i] for i in outputs), tuple(outputs))
    states.append(agg.output_shape)
    ms_cell = CellPlan("ms_cell", "multiscale", multiscale.op_set, len(multiscale.nodes),
                       scale_channels(layout.ms_channels, m), False, False, True,
                       multiscale, agg.output_shape, states[outputs[-1]],
                       (len(states) - 1, outputs[-1]))
    head = HeadPlan(num_classes, ms_cell.output_shape, (height, width))
    return NetworkPlan("autortnet", stem, tuple(plans), agg, ms_cell, head)


def autortnet_genotype_plan(genotype, num_classes, input_shape=(None, None, 3),
                            width_multiplier=1.0):
    """The plan of the derived AutoRTNet network of `genotype` (validated)."""
    layout, depths, aggregation = autortnet_spec(genotype)
    cells = {autortnet_cell_type(h, k): genotype.cell(autortnet_cell_type(h, k))
             for h in range(len(depths)) for k in (0, 1)}
    return autortnet_plan(layout, num_classes, input_shape[0], input_shape[1], depths,
                          cells, aggregation, genotype.cell("multiscale"),
                          width_multiplier=width_multiplier)


def genotype_plan(genotype, num_classes, input_shape=(None, None, 3), width_multiplier=1.0):
    """The plan of a derived network of any method (CAS widths scaled by its layout)."""
    if genotype.method == "autortnet":
        return autortnet_genotype_plan(genotype, num_classes, input_shape,
                                       width_multiplier)
    from tf_nas_seg.networks.builder import scaled_layout

    layout = genotype_layout(genotype)
    return cas_genotype_plan(genotype, num_classes, scaled_layout(layout, width_multiplier),
                             input_shape)


__all__ = ["AggregationPlan", "CellPlan", "HeadPlan", "NetworkPlan", "StemPlan",
           "AutoRTNetLayout", "autortnet_cell_type", "autortnet_genotype_plan",
           "autortnet_plan", "cas_genotype_plan", "cas_plan", "genotype_plan", "plan_macs",
           "run_plan"]
