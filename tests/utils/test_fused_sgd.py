"""FusedSGD: the update of keras.optimizers.SGD, in one TensorFlow kernel per variable."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_nas_seg.utils.distribute import ReducedGradients
from tf_nas_seg.utils.fused_sgd import FusedSGD


class ReducedSGD(ReducedGradients, keras.optimizers.SGD):
    """Keras SGD taking gradients already summed over replicas, as FusedSGD does."""


def _model(seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Conv2D(2, 1)(keras.layers.ReLU()(x))
    return keras.Model(inputs, x)


def _schedule():
    return keras.optimizers.schedules.PolynomialDecay(0.05, 10, 0.0, power=0.9)


def _train(optimizer, steps=7):
    model = _model(0)
    rng = np.random.default_rng(1)
    data = [(rng.normal(size=(2, 8, 8, 3)).astype("float32"),
             rng.normal(size=(2, 8, 8, 2)).astype("float32")) for _ in range(steps)]

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((model(x, training=True) - y) ** 2)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    for x, y in data:
        step(x, y)
    graph = step.get_concrete_function(*data[0]).graph
    return model, len(graph.as_graph_def().node) + sum(
        len(f.node_def) for f in graph.as_graph_def().library.function)


@pytest.mark.parametrize("nesterov", [False, True])
def test_fused_sgd_follows_keras_sgd(nesterov):
    reference, reference_nodes = _train(keras.optimizers.SGD(
        _schedule(), momentum=0.9, nesterov=nesterov))
    fused, fused_nodes = _train(FusedSGD(_schedule(), momentum=0.9, nesterov=nesterov))
    for a, b in zip(reference.weights, fused.weights):
        # float32 updates, possibly fused multiply-adds in one kernel and not the other:
        # a few ulps after 7 steps
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-6)
    variables = len(reference.trainable_variables)
    if nesterov:  # falls back to Keras's own update (less the one-replica all-reduce)
        _, reduced_nodes = _train(ReducedSGD(_schedule(), momentum=0.9, nesterov=True))
        assert fused_nodes == reduced_nodes
    else:  # at least 4 of Keras's ~8 nodes per variable folded into one kernel
        assert fused_nodes <= reference_nodes - 4 * variables, (fused_nodes,
                                                                reference_nodes)


def test_fused_sgd_saves_and_checkpoints_as_sgd():
    optimizer = FusedSGD(_schedule(), momentum=0.9, name="sgd")
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(optimizer))
    assert type(restored) is FusedSGD and restored.momentum == 0.9
    assert restored.get_config() == optimizer.get_config()
    model = _model(0)
    fused, plain = FusedSGD(0.1, momentum=0.9), keras.optimizers.SGD(0.1, momentum=0.9)
    fused.build(model.trainable_variables)
    plain.build(model.trainable_variables)
    assert [(v.path.split("/")[-1], v.shape) for v in fused.variables] == [
        (v.path.split("/")[-1], v.shape) for v in plain.variables]


def test_fused_sgd_scales_gradients_through_one_learning_rate_per_apply():
    """`scaled_gradients(s)` updates as Keras SGD does with every gradient times s, and
    the learning rate is read and scaled once per `apply`, not once per variable."""
    rng = np.random.default_rng(0)
    shapes = [(3, 4), (4,), (5, 2, 3)] * 10
    grads = [[tf.constant(rng.normal(size=s).astype("float32")) for s in shapes]
             for _ in range(3)]
    init = [rng.normal(size=s).astype("float32") for s in shapes]

    def run(optimizer, scaled):
        variables = [tf.Variable(v) for v in init]

        @tf.function
        def apply(gs, scale):
            if scaled:
                with optimizer.scaled_gradients(scale):
                    optimizer.apply(gs, variables)
            else:
                optimizer.apply([g * scale for g in gs], variables)

        for gs in grads:
            apply(gs, tf.constant(0.3))
        graph = apply.get_concrete_function(grads[0], tf.constant(0.3)).graph
        reads = sum(op.type == "ReadVariableOp" for op in graph.get_operations())
        return [v.numpy() for v in variables], reads

    fused, fused_reads = run(FusedSGD(_schedule(), momentum=0.9), scaled=True)
    keras_sgd, _ = run(ReducedSGD(_schedule(), momentum=0.9), scaled=False)
    for a, b in zip(fused, keras_sgd):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert fused_reads < 5, fused_reads  # the schedule's step and the rate, not 30 reads
    # Nesterov is not fused: the scale goes to each gradient instead, same update
    nesterov, _ = run(FusedSGD(_schedule(), momentum=0.9, nesterov=True), scaled=True)
    reference, _ = run(ReducedSGD(_schedule(), momentum=0.9, nesterov=True), scaled=False)
    for a, b in zip(nesterov, reference):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
