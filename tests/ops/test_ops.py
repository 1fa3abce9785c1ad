"""Every op of every op set through the shared layer test, plus exact-shape checks."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.layer_test_helper import run_layer_test
from tf_nas_seg.ops import (OP_SETS, ConvOp, FactorizedReduce, ResizeLike, get_op_set)
from tf_nas_seg.ops.op_set import NONE_OPS

CASES = [(s.name, op, stride) for s in OP_SETS.values() for op in s.ops
         for stride in ((1, 2) if s.strided else (1,))]


def test_op_sets_match_the_papers():
    assert len(OP_SETS["cas_backbone"].ops) == 12  # 11 + none
    assert "none" in OP_SETS["cas_backbone"].ops
    assert len(OP_SETS["cas_multiscale"].ops) == 10
    assert len(OP_SETS["autortnet_cell"].ops) == 10
    assert OP_SETS["autortnet_cell"].ops[0] == "zero"
    assert len(OP_SETS["aggregation"].ops) == 5
    assert len(OP_SETS["darts"].ops) == 8


@pytest.mark.parametrize("op_set,op,stride", CASES)
def test_every_op(op_set, op, stride, tmp_path):
    spec = get_op_set(op_set)
    height, width, channels = 9, 11, 8
    expected = (-(-height // stride), -(-width // stride), channels)
    run_layer_test(lambda: spec.build(op, channels, stride, affine=op not in NONE_OPS),
                   (height, width, channels), expected, tmp_path)


def test_unknown_op_and_stride_are_clear_errors():
    with pytest.raises(ValueError, match="not in op set 'darts'"):
        get_op_set("darts").build("conv_15x1_1x15", 8)
    with pytest.raises(ValueError, match="does not support strides=2"):
        get_op_set("cas_multiscale").build("conv_3x3", 8, strides=2)
    with pytest.raises(ValueError, match="valid op sets"):
        get_op_set("nope")


def test_strided_dilated_conv_equals_subsampled_dilated_conv():
    # PyTorch-style stride-2 dilation-2 conv == stride-1 dilated conv read every 2nd pixel.
    x = np.random.default_rng(0).normal(size=(1, 12, 14, 4)).astype("float32")
    strided = ConvOp(4, ((3, 3),), strides=2, dilation_rate=2, separable=True)
    dense = ConvOp(4, ((3, 3),), strides=1, dilation_rate=2, separable=True)
    strided(x), dense(x)
    dense.set_weights(strided.get_weights())
    np.testing.assert_allclose(strided(x, training=False),
                               keras.ops.convert_to_numpy(dense(x, training=False))[:, ::2, ::2],
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("op", ["conv_3x3", "conv_3x3_x2", "dil_conv_3x3", "sep_conv_3x3_x4",
                                "pooled_conv_3x3_x2", "skip_connect"])
@pytest.mark.parametrize("stride", [1, 2])
def test_macs_match_tensorflow_profiler(op, stride):
    from tensorflow.python.profiler.model_analyzer import profile
    from tensorflow.python.profiler.option_builder import ProfileOptionBuilder

    layer = get_op_set("cas_backbone").build(op, 16, stride)
    shape = (20, 30, 16)
    layer(np.zeros((1,) + shape, "float32"))
    fn = tf.function(lambda x: layer(x, training=False)).get_concrete_function(
        tf.TensorSpec((1,) + shape))
    options = ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    options["account_type_regexes"] = ["Conv2D", "DepthwiseConv2dNative"]
    flops = profile(fn.graph, options=options).total_float_ops
    assert layer.count_macs(shape) == flops // 2


def test_factorized_reduce_odd_sizes():
    y = FactorizedReduce(10)(np.zeros((2, 7, 9, 6), "float32"))
    assert tuple(y.shape) == (2, 4, 5, 10)


def test_resize_like_works_with_dynamic_shapes_in_a_graph():
    layer = ResizeLike()

    @tf.function(input_signature=[tf.TensorSpec((None, None, None, 3)),
                                  tf.TensorSpec((None, None, None, 1))])
    def fn(x, ref):
        return layer(x, ref)

    out = fn(tf.ones((1, 4, 5, 3)), tf.zeros((1, 13, 17, 1)))
    assert tuple(out.shape) == (1, 13, 17, 3)
    np.testing.assert_allclose(out, 1.0, rtol=1e-6)


@pytest.mark.parametrize("kwargs", [
    {"kernel_sizes": ((3, 3),)}, {"kernel_sizes": ((3, 3), (1, 5)), "strides": 2},
    {"kernel_sizes": ((3, 3),), "dilation_rate": 2},
    {"kernel_sizes": ((5, 5),), "strides": 2, "dilation_rate": 2},
    {"kernel_sizes": ((3, 3), (3, 3)), "strides": 2, "separable": True},
    {"kernel_sizes": ((5, 5),), "dilation_rate": 2, "separable": True},
    {"kernel_sizes": ((3, 3),), "strides": 2, "dilation_rate": 2, "separable": True}])
def test_convolve_is_the_keras_layer_call(kwargs):
    """`convolve` (the TensorFlow call under Keras's Conv2D and DepthwiseConv2D,
    without its Python overhead) gives the layer's output and gradients, eagerly and
    traced."""
    import tensorflow as tf

    from tf_nas_seg.ops.conv_op import ConvOp, convolve

    x = tf.Variable(np.random.default_rng(0).normal(size=(2, 17, 23, 8)).astype("float32"))
    op = ConvOp(6, **kwargs)
    op.build(x.shape)
    convs = [conv for _, unit, _ in op.units for conv in unit]

    def run(fn):
        results = []
        for conv in convs:
            with tf.GradientTape() as tape:
                y = fn(conv, tf.identity(x[..., :conv.kernel.shape[2]]))
                loss = tf.reduce_sum(y * y)
            results += [y] + tape.gradient(loss, [x, conv.kernel])
        return results

    for traced in (False, True):
        wrap = tf.function if traced else (lambda f: f)
        ours = wrap(lambda: run(convolve))()
        keras_call = wrap(lambda: run(lambda conv, x: conv(x)))()
        for a, b in zip(ours, keras_call):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-6)


def test_convolve_makes_one_node_for_an_undilated_depthwise_convolution():
    """The fast path is taken: no space-to-batch constants around the kernel."""
    import tensorflow as tf

    from tf_nas_seg.ops.conv_op import convolve

    conv = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", use_bias=False)
    conv.build((1, 9, 9, 4))

    def op_types(fn):
        graph = tf.function(fn).get_concrete_function(tf.TensorSpec((1, 9, 9, 4))).graph
        return [op.type for op in graph.get_operations()]

    ours, through_keras = op_types(lambda x: convolve(conv, x)), op_types(conv)
    assert ours.count("DepthwiseConv2dNative") == 1 and "Const" not in ours, ours
    assert "Const" in through_keras, through_keras  # what the fast path saves
