"""Gumbel-softmax samples follow the softmax probabilities; tau -> 0 gives one-hot."""

import keras
import numpy as np
import tensorflow as tf

from tf_nas_seg.space.relaxation import ArchitectureRelaxation, gumbel_softmax


def test_hard_gumbel_frequencies_follow_softmax():
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]], "float32"))
    batch = np.repeat(logits, 20000, axis=0)
    sample = keras.ops.convert_to_numpy(
        gumbel_softmax(batch, 1.0, keras.random.SeedGenerator(1), hard=True))
    assert np.allclose(sample.sum(axis=1), 1.0)
    assert set(np.unique(sample)) <= {0.0, 1.0}
    freq = sample.mean(axis=0)
    # 20000 draws: the standard error of each frequency is below 0.0036.
    np.testing.assert_allclose(freq, [0.5, 0.3, 0.15, 0.05], atol=0.015)


def test_low_temperature_gives_one_hot_and_high_gives_uniform():
    logits = np.random.default_rng(0).normal(size=(500, 6)).astype("float32")
    cold = keras.ops.convert_to_numpy(
        gumbel_softmax(logits, 0.01, keras.random.SeedGenerator(2)))
    assert np.mean(cold.max(axis=1) > 0.99) > 0.97
    hot = keras.ops.convert_to_numpy(
        gumbel_softmax(logits, 1000.0, keras.random.SeedGenerator(3)))
    np.testing.assert_allclose(hot, 1 / 6, atol=0.01)


def test_straight_through_gradient_is_the_soft_gradient():
    logits = tf.Variable(np.array([[0.2, -0.1, 0.4]], "float32"))
    weights = tf.constant([[1.0, 2.0, 3.0]])
    grads = []
    for hard in (False, True):
        with tf.GradientTape() as tape:
            y = gumbel_softmax(logits, 0.7, 5, hard=hard)
            loss = tf.reduce_sum(y * weights)
        grads.append(tape.gradient(loss, logits).numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-5, atol=1e-6)
    assert np.abs(grads[0]).sum() > 0


def test_relaxation_layer_modes_and_inference():
    logits = np.array([[1.0, 0.0, -1.0]], "float32")
    soft = keras.ops.convert_to_numpy(keras.ops.softmax(logits))
    for mode in ("softmax", "gumbel", "gumbel_hard"):
        layer = ArchitectureRelaxation(mode, temperature=1.0, seed=4)
        np.testing.assert_allclose(layer(logits, training=False), soft, rtol=1e-6)
        out = keras.ops.convert_to_numpy(layer(logits, training=True))
        np.testing.assert_allclose(out.sum(), 1.0, rtol=1e-5)
    layer = ArchitectureRelaxation("gumbel", temperature=3.0)
    layer.temperature.assign(0.03)
    assert float(layer.temperature) == np.float32(0.03)
    assert ArchitectureRelaxation.from_config(layer.get_config()).mode == "gumbel"
