"""The latency entries of a network plan: one walker for every method.

`plan_sections(plan)` lists, in execution order, every layer a `NetworkPlan` runs as a
`LayerEntry` (its table key, a factory of the layer, its input shapes, and for a
candidate op of a searched edge the `EdgeRef` its cost goes to):

- the standardisation and the stem convolutions, taken from the plan's stem layers
  (`Stem` or AutoRTNet's two `ConvOp`s) with their own configurations;
- per cell: its input preprocessing (factorized reduce when input 0 has twice the size,
  else a 1x1 conv; a multi-scale cell's upsampling and per-edge 1x1 projections), the op
  of every kept edge (every candidate op of a searched edge), the node sums and the
  concatenation;
- AutoRTNet's aggregation cell: input projections, one op per edge, node sums, resizes
  of the branch ends, concatenation;
- the head, from `SegmentationHead`: its classifier and the upsampling of the logits.

The table builder measures these keys, the cost models read them, a derived network's
prediction sums them: the same plan gives all three.
"""

import functools

import keras

from tf_nas_seg.networks.stem import Standardize
from tf_nas_seg.ops.conv_op import ConvOp
from tf_nas_seg.ops.factorized_reduce import FactorizedReduce
from tf_nas_seg.ops.op_set import NONE_OPS, get_op_set
from tf_nas_seg.ops.resize_like import resize_to
from tf_nas_seg.latency.layer_entry import EdgeRef, LayerEntry, inference_call
from tf_nas_seg.latency.table import fixed_key, op_key

# Derived cells keep k = 2 incoming edges per node (SPEC section 1): the node sums a
# supernet's derived networks contain.
KEEP_EDGES = 2
AGGREGATION_TYPE = "aggregation"


def _layer(cls, *args, **kwargs):
    return inference_call(cls(*args, **kwargs))


def _clone(cls, config):
    return inference_call(cls.from_config(config))


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


def conv1x1_entry(order, c_in, c_out, h, w):
    name = "conv_1x1" if order == "conv_bn_relu" else "relu_conv_bn_1x1"
    return LayerEntry(fixed_key(name, c_in, c_out, h, w),
                      functools.partial(_layer, ConvOp, c_out, ((1, 1),), order=order),
                      ((h, w, c_in),))


def op_entry(op_set, op, channels, shape, stride, edge):
    return LayerEntry(op_key(op_set, op, shape[2], channels, shape[0], shape[1], stride),
                      functools.partial(_candidate, op_set, op, channels, stride),
                      (shape,), edge)


def resize_entry(shape, height, width):
    """Bilinear resize of a (h, w, c) tensor to height x width."""
    return LayerEntry(fixed_key(f"resize_to_{height}x{width}", shape[2], shape[2],
                                shape[0], shape[1]),
                      functools.partial(_resize, height, width), (tuple(shape),))


def sum_entry(n, channels, h, w):
    return LayerEntry(fixed_key(f"add{n}", channels, channels, h, w), lambda: _add,
                      ((h, w, channels),) * n)


def concat_entry(n, channels, h, w):
    return LayerEntry(fixed_key(f"concat{n}", channels, n * channels, h, w),
                      lambda: _concat, ((h, w, channels),) * n)


def stem_entries(stem_plan):
    """The standardisation and each stem conv, from the stem's own layers."""
    height, width, _ = stem_plan.input_shape
    entries = [LayerEntry(fixed_key("standardize", 3, 3, height, width),
                          functools.partial(_layer, Standardize), ((height, width, 3),))]
    for conv, (h, w, c) in stem_plan.convs(stem_plan.build_layers()):
        kh, kw = conv.kernel_sizes[0]
        if len(conv.kernel_sizes) != 1:
            raise ValueError(f"stem conv {conv.name}: one unit expected, got "
                             f"{len(conv.kernel_sizes)}")
        entries.append(LayerEntry(fixed_key(f"conv_{kh}x{kw}", c, conv.filters, h, w,
                                            conv.strides),
                                  functools.partial(_clone, ConvOp, conv.get_config()),
                                  ((h, w, c),)))
    return entries


def head_entries(head_plan):
    """The head's classifier on the features and the upsampling of its logits."""
    head = head_plan.build_layer()
    fh, fw, fc = head_plan.features
    kh, kw = head.classifier.kernel_size
    classifier = head.classifier.get_config()
    entries = [LayerEntry(fixed_key(f"classifier_{kh}x{kw}", fc, head_plan.num_classes,
                                    fh, fw),
                          functools.partial(_clone, keras.layers.Conv2D, classifier),
                          ((fh, fw, fc),))]
    height, width = head_plan.image_size
    if (fh, fw) != (height, width):
        entries.append(resize_entry((fh, fw, head_plan.num_classes), height, width))
    return entries


def cell_entries(cell):
    """Entries of one cell (a `CellPlan`, search or fixed).

    A search cell yields every candidate op of every edge (with its EdgeRef, rows in the
    order of `Cell.edge_rows`) and the node sums of its derived cells (k = 2 inputs); a
    fixed cell only its kept ops.
    """
    s0, s1 = cell.s0, cell.s1
    h, w, _ = cell.node_shape
    entries = []
    if cell.multiscale:
        if (s1[0], s1[1]) != (h, w):
            entries.append(resize_entry(s1, h, w))
    else:
        if cell.reduction_prev:
            entries.append(LayerEntry(
                fixed_key("factorized_reduce", s0[2], cell.channels, s0[0], s0[1], 2),
                functools.partial(_layer, FactorizedReduce, cell.channels), (s0,)))
        else:
            entries.append(conv1x1_entry(cell.order, s0[2], cell.channels, s0[0], s0[1]))
        entries.append(conv1x1_entry(cell.order, s1[2], cell.channels, s1[0], s1[1]))
    op_names = get_op_set(cell.op_set).ops
    inputs = {}
    for row, (node, source, op) in enumerate(cell.edges):
        shape = cell.edge_shape(source)
        stride = cell.stride(source)
        inputs[node] = inputs.get(node, 0) + 1
        if cell.multiscale and source < 2:
            c_in = (s0 if source == 0 else s1)[2]
            projection = conv1x1_entry(cell.order, c_in, cell.channels, h, w)
            if op is None:
                projection = LayerEntry(projection.key, projection.factory,
                                        projection.input_shapes,
                                        EdgeRef(cell.cell_type, row))
            entries.append(projection)
        if op is None:
            for index, name in enumerate(op_names):
                if name not in NONE_OPS:
                    entries.append(op_entry(cell.op_set, name, cell.channels, shape,
                                            stride, EdgeRef(cell.cell_type, row, index)))
        else:
            entries.append(op_entry(cell.op_set, op, cell.channels, shape, stride, None))
    for node in range(cell.steps):
        n = inputs.get(node, 0)
        if cell.searched:
            n = min(n, KEEP_EDGES)
        if n >= 2:
            entries.append(sum_entry(n, cell.channels, h, w))
    n = len(cell.concat)
    if n >= 2:
        entries.append(concat_entry(n, cell.channels, h, w))
    return entries


def aggregation_entries(agg):
    """Entries of an `AggregationPlan` (search: every candidate op of every edge with
    its EdgeRef ("aggregation", edge, op index); fixed: the op of each edge)."""
    spec = get_op_set(agg.op_set)
    channels = agg.channels
    entries = [conv1x1_entry(spec.order, s[2], channels, s[0], s[1])
               for s in agg.input_shapes]
    sizes = agg.node_sizes
    fan_in = {}
    for e, (source, target, stride) in enumerate(agg.edges):
        shape = sizes[source] + (channels,)
        fan_in[target] = fan_in.get(target, 0) + 1
        if agg.ops is None:
            for index, name in enumerate(spec.ops):
                if name not in NONE_OPS:
                    entries.append(op_entry(agg.op_set, name, channels, shape, stride,
                                            EdgeRef(AGGREGATION_TYPE, e, index)))
        else:
            entries.append(op_entry(agg.op_set, agg.ops[e], channels, shape, stride, None))
    for node in sorted(fan_in):
        if fan_in[node] >= 2:
            entries.append(sum_entry(fan_in[node], channels, *sizes[node]))
    h, w = sizes[agg.outputs[0]]
    for node in agg.outputs[1:]:
        if sizes[node] != (h, w):
            entries.append(resize_entry(sizes[node] + (channels,), h, w))
    if len(agg.outputs) >= 2:
        entries.append(concat_entry(len(agg.outputs), channels, h, w))
    return entries


def plan_sections(plan):
    """Entries of a NetworkPlan by part.

    Returns:
        {"stem": [...], "cells": [(CellPlan, [...]), ...], "aggregation": [...],
         "multiscale": [...], "head": [...]} (empty lists for parts it lacks).
    """
    return {"stem": stem_entries(plan.stem),
            "cells": [(cell, cell_entries(cell)) for cell in plan.cells],
            "aggregation": ([] if plan.aggregation is None
                            else aggregation_entries(plan.aggregation)),
            "multiscale": [] if plan.ms_cell is None else cell_entries(plan.ms_cell),
            "head": head_entries(plan.head)}


def plan_entries(plan):
    """Every LayerEntry of a NetworkPlan in execution order (keys may repeat)."""
    sections = plan_sections(plan)
    entries = list(sections["stem"])
    for _, cell in sections["cells"]:
        entries.extend(cell)
    return entries + sections["aggregation"] + sections["multiscale"] + sections["head"]
