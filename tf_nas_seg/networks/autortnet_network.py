"""Derived AutoRTNet networks: a Keras functional model built from a genotype."""

import keras

from tf_nas_seg.networks.autortnet_layout import AutoRTNetLayout, scale_channels
from tf_nas_seg.networks.stem import SegmentationHead, normalization_layer
from tf_nas_seg.ops.conv_op import ConvOp
from tf_nas_seg.ops.macs import out_size
from tf_nas_seg.space.aggregation_cell import AggregationCell
from tf_nas_seg.space.cell import Cell
from tf_nas_seg.space.genotype import GenotypeError
from tf_nas_seg.space.multi_scale_cell import MultiScaleCell


def autortnet_spec(genotype):
    """(layout, depths, aggregation dict) of an AutoRTNet genotype, validated.

    Raises:
        GenotypeError: naming the field that is missing or wrong.
    """
    if genotype.method != "autortnet":
        raise GenotypeError(f"an AutoRTNet network needs a genotype of method "
                            f"'autortnet', got {genotype.method!r}; build it with the "
                            "builder of its method")
    macro = genotype.macro_dict
    for key in ("layout", "depths", "aggregation"):
        if key not in macro:
            raise GenotypeError(f"macro.{key}: missing (an AutoRTNet genotype.json written "
                                "by bin/search --method=autortnet has it)")
    try:
        layout = AutoRTNetLayout.from_json(macro["layout"])
    except (TypeError, ValueError, KeyError) as e:
        raise GenotypeError(f"macro.layout: {e}") from e
    depths = macro["depths"]
    if (not isinstance(depths, list) or len(depths) != len(layout.hyper_cells)
            or any(isinstance(d, bool) or not isinstance(d, int) for d in depths)
            or any(not 1 <= d <= n for d, n in zip(depths, layout.hyper_cells))):
        raise GenotypeError(f"macro.depths: expected one depth per hyper-cell, each in "
                            f"[1, cells of that hyper-cell {list(layout.hyper_cells)}], "
                            f"got {depths!r}")
    aggregation = macro["aggregation"]
    if not isinstance(aggregation, dict) or not all(
            k in aggregation for k in ("op_set", "edges", "outputs", "ops")):
        raise GenotypeError("macro.aggregation: expected an object with op_set, edges, "
                            "outputs and ops")
    for h in range(len(depths)):
        for cell_type in (f"reduce_{h + 1}", f"normal_{h + 1}"):
            genotype.cell(cell_type)
    genotype.cell("multiscale")
    return layout, list(depths), aggregation


def _network_layers(genotype, num_classes, width_multiplier):
    """Every layer of the derived network, in order, unbuilt (shared by builder and MACs).

    Returns:
        (layout, stem convs, [[cells of hyper-cell h]], aggregation, ms_cell, head).
    """
    if not width_multiplier > 0:
        raise ValueError(f"width_multiplier must be > 0, got {width_multiplier!r}")
    layout, depths, agg = autortnet_spec(genotype)
    m = float(width_multiplier)
    stem_channels = scale_channels(layout.channels, m)
    stems = [ConvOp(stem_channels, ((3, 3),), strides=2, name=f"stem{i}") for i in (0, 1)]
    hyper, reduction_prev = [], True  # stem0 has twice the size of stem1
    for h, depth in enumerate(depths):
        channels = layout.node_channels(h, m)
        reduce, normal = genotype.cell(f"reduce_{h + 1}"), genotype.cell(f"normal_{h + 1}")
        cells = []
        for k in range(depth):
            # Two-input rule: after a hyper-cell that ends at cell k, the next reduction
            # cell takes x_k and x_(k-1); x_(-1) (a depth-1 hyper-cell) has twice the size.
            cells.append(Cell(reduce.op_set, len(reduce.nodes), channels, reduction=k == 0,
                              reduction_prev=reduction_prev,
                              genotype=reduce if k == 0 else normal,
                              name=f"hyper_cell_{h + 1}_cell_{k}"))
            reduction_prev = k == 0
        hyper.append(cells)
    try:
        aggregation = AggregationCell(agg["op_set"], scale_channels(layout.agg_channels, m),
                                      edges=agg["edges"], outputs=agg["outputs"],
                                      num_inputs=len(depths), ops=agg["ops"],
                                      name="aggregation")
    except (TypeError, ValueError) as e:
        raise GenotypeError(f"macro.aggregation: {e}") from e
    multiscale = genotype.cell("multiscale")
    ms_cell = MultiScaleCell(multiscale.op_set, channels=scale_channels(layout.ms_channels, m),
                             genotype=multiscale, name="ms_cell")
    head = SegmentationHead(num_classes, name="head")
    return layout, stems, hyper, aggregation, ms_cell, head


def build_autortnet_network(genotype, num_classes, input_shape=(None, None, 3),
                            width_multiplier=1.0, name="autortnet_network"):
    """Builds the network an AutoRTNet genotype describes, from the shared op library.

    Two stride-2 stem convs, then per hyper-cell h exactly `macro.depths[h]` cells (a
    reduction cell, then normal cells; the next reduction cell takes the last two
    outputs, the two-input rule), the aggregation cell over the three hyper-cell
    outputs, the multi-scale cell (aggregation output and last hyper-cell) and the
    classifier, upsampled to the input size.

    Args:
        genotype: A `Genotype` of method "autortnet" (bin/search --method=autortnet).
        num_classes: Output classes.
        input_shape: (height, width, 3); None for dynamic sizes.
        width_multiplier: Scales every channel count (rounded, at least 1); 1.0 gives the
            searched widths.
        name: Model name.

    Returns:
        A `keras.Model` mapping raw 0..255 RGB images (float32) to logits at the image
        size (standardised inside the graph, as CAS networks).

    Raises:
        GenotypeError: the genotype does not describe an AutoRTNet network.
    """
    _, stems, hyper, aggregation, ms_cell, head = _network_layers(genotype, num_classes,
                                                                  width_multiplier)
    images = keras.Input(input_shape, name="images")
    x = normalization_layer()(images)
    s0 = stems[0](x)
    s1 = stems[1](s0)
    outputs = []
    for cells in hyper:
        for cell in cells:
            s0, s1 = s1, cell(s0, s1)
        outputs.append(s1)
    features = aggregation(outputs)
    features = ms_cell(features, outputs[-1])
    logits = head(features, images)
    return keras.Model(images, logits, name=name)


def autortnet_network_macs(genotype, num_classes, height, width, width_multiplier=1.0,
                           include_aggregation_edges=True):
    """Exact MACs of `build_autortnet_network(genotype, ...)` at one input size.

    Walks the same layers the builder creates (convolutions only, see
    `tf_nas_seg.ops.macs`), without building a model.

    Args:
        genotype: An AutoRTNet genotype.
        num_classes: Output classes.
        height: Input height.
        width: Input width.
        width_multiplier: As in the builder.
        include_aggregation_edges: False leaves out the aggregation cell's searched
            edges (the part of the network AutoRTNet's cost term does not cover).
    """
    _, stems, hyper, aggregation, ms_cell, head = _network_layers(genotype, num_classes,
                                                                  width_multiplier)
    shape = (height, width, 3)
    total = 0
    a = None
    for stem in stems:
        total += stem.count_macs(shape)
        a, shape = shape, (out_size(shape[0], 2), out_size(shape[1], 2), stem.filters)
    s0, s1 = a, shape
    outputs = []
    for cells in hyper:
        for cell in cells:
            total += cell.count_macs(s0, s1)
            h, w = (out_size(s1[0], 2), out_size(s1[1], 2)) if cell.reduction else s1[:2]
            s0, s1 = s1, (h, w, cell.output_channels)
        outputs.append(s1)
    total += aggregation.input_macs(outputs)
    if include_aggregation_edges:
        total += sum(aggregation.edge_macs(outputs))
    low = outputs[0][:2] + (aggregation.output_channels,)
    total += ms_cell.count_macs(low, outputs[-1])
    return total + head.count_macs(low[:2] + (ms_cell.output_channels,))
