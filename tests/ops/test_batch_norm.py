"""BatchNorm: the fused kernel, and the batch-statistics mode search supernets use."""

import keras
import numpy as np
import pytest

from tf_nas_seg.ops.batch_norm import BatchNorm


def _x(seed=0):
    return (np.random.default_rng(seed).normal(2.0, 3.0, (4, 5, 6, 3))).astype("float32")


def _batch_normalised(x, eps=1e-5):
    x = x.astype("float64")
    mean = x.mean(axis=(0, 1, 2))
    var = x.var(axis=(0, 1, 2))
    return (x - mean) / np.sqrt(var + eps)


@pytest.mark.parametrize("training", [True, False])
def test_without_running_stats_both_modes_use_batch_statistics_and_assign_nothing(training):
    layer = BatchNorm(affine=False, track_running_stats=False)
    x = _x()
    layer.build(x.shape)
    y = keras.ops.convert_to_numpy(layer(x, training=training))
    # float32 kernel: tolerances of float32 arithmetic on values of order 1
    np.testing.assert_allclose(y, _batch_normalised(x), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.moving_mean), 0.0)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.moving_variance), 1.0)


def test_with_running_stats_training_updates_them_and_inference_reads_them():
    layer = BatchNorm(affine=False, momentum=0.9)
    x = _x()
    layer(x, training=True)
    mean = keras.ops.convert_to_numpy(layer.moving_mean)
    np.testing.assert_allclose(mean, 0.1 * x.astype("float64").mean(axis=(0, 1, 2)),
                               rtol=1e-4, atol=1e-5)
    y = keras.ops.convert_to_numpy(layer(x, training=False))
    variance = keras.ops.convert_to_numpy(layer.moving_variance)
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(variance + 1e-5), rtol=1e-4,
                               atol=1e-4)


def test_config_round_trip_keeps_the_mode():
    layer = BatchNorm(affine=True, track_running_stats=False)
    clone = BatchNorm.from_config(layer.get_config())
    assert clone.track_running_stats is False and clone.affine is True
    # configs written before the setting existed load with running statistics
    old = {k: v for k, v in layer.get_config().items() if k != "track_running_stats"}
    assert BatchNorm.from_config(old).track_running_stats is True


@pytest.mark.parametrize("affine", [False, True])
def test_batch_statistics_gradients_match_the_generic_ops_without_zeros_nodes(affine):
    """In a supernet's step (no running statistics) the fused kernel's gradients are
    those of the generic moments-based normalisation, and the gradient graph holds no
    zeros for the kernel's unused outputs (five per layer with FusedBatchNormV3)."""
    import tensorflow as tf

    layer = BatchNorm(affine=affine, track_running_stats=False)
    x = tf.constant(_x())
    layer.build(x.shape)
    dy = tf.constant(np.random.default_rng(1).normal(size=x.shape).astype("float32"))
    variables = [layer.gamma, layer.beta] if affine else []

    def grads(normalise):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(normalise(x) * dy)
        return tape.gradient(loss, [x] + variables)

    def generic(x):
        mean, variance = tf.nn.moments(x, axes=[0, 1, 2])
        scale = layer.gamma if affine else None
        offset = layer.beta if affine else None
        return tf.nn.batch_normalization(x, mean, variance, offset, scale, 1e-5)

    fused = tf.function(lambda: grads(lambda x: layer(x, training=True)))
    for a, b in zip(fused(), grads(generic)):
        # float32 sums over 120 pixels: tolerances of float32 on values of order 1
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-3, atol=1e-4)
    types = [op.type for op in fused.get_concrete_function().graph.get_operations()]
    assert "ZerosLike" not in types and types.count("Fill") == 0, types
    assert not [op for op in fused.get_concrete_function().graph.get_operations()
                if op.type == "Const" and op.name.split("/")[-1].startswith("zeros")]
