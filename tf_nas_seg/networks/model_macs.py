"""MACs of any Keras model, counted from its traced graph (same convention as ops.macs)."""

import math

import tensorflow as tf

# Ops whose multiply-accumulates count (convolutions and dense layers), as in ops/macs.py.
_CONV_OPS = ("Conv2D", "DepthwiseConv2dNative", "MatMul", "BatchMatMulV2")


def graph_macs(graph):
    """Sums the MACs of the convolutions and matrix products of a traced graph.

    Needs static shapes (trace with a fully defined input shape). Batch norm, ReLU,
    pooling, additions and resizing count zero, as `tf_nas_seg.ops.macs` states; a
    dilated conv counts its real output positions, not the padded grid TensorFlow's
    space-to-batch implementation computes.

    Raises:
        ValueError: an op's shapes are not static.
    """
    total = 0
    for op in graph.get_operations():
        if op.type not in _CONV_OPS:
            continue
        out = op.outputs[0].shape
        # TensorFlow runs a dilated conv as space-to-batch, conv, batch-to-space; the
        # inner conv's output includes the padding to a multiple of the rate. Count
        # the cropped output, as the analytic count does.
        for consumer in op.outputs[0].consumers():
            if consumer.type == "BatchToSpaceND":
                out = consumer.outputs[0].shape
        kernel = op.inputs[1].shape
        if not (out.is_fully_defined() and kernel.is_fully_defined()):
            raise ValueError(f"{op.name} ({op.type}) has a dynamic shape; trace the model "
                             "with a fully defined input shape")
        if op.type == "Conv2D":
            kh, kw, c_in, _ = kernel.as_list()
            total += math.prod(out.as_list()) * kh * kw * c_in
        elif op.type == "DepthwiseConv2dNative":
            kh, kw, _, _ = kernel.as_list()
            total += math.prod(out.as_list()) * kh * kw
        else:
            transpose_a = op.get_attr("transpose_a") if op.type == "MatMul" else op.get_attr(
                "adj_x")
            a = op.inputs[0].shape.as_list()
            inner = a[-2] if transpose_a else a[-1]
            total += math.prod(out.as_list()) * inner
    return int(total)


def count_model_macs(model, height, width, channels=3):
    """MACs of one forward pass of `model` on a batch-1 (height, width) input.

    Args:
        model: A Keras model (or any callable taking an NHWC image batch).
        height: Input height.
        width: Input width.
        channels: Input channels.
    """
    spec = tf.TensorSpec((1, height, width, channels), tf.float32)
    function = tf.function(lambda x: model(x, training=False))
    return graph_macs(function.get_concrete_function(spec).graph)
