"""One helper that checks every layer of the library the same way (keras-hub style)."""

import os

import keras
import numpy as np


def run_layer_test(layer_factory, input_shape, expected_output_shape, tmp_path,
                   batch=2, seed=0, invariant_weights=()):
    """Checks a single-input layer end to end.

    1. get_config / from_config round trip gives the same config;
    2. a symbolic call with dynamic height and width, and one at a static size, give the
       expected output shapes (and `compute_output_shape` agrees);
    3. an eager call on random data gives the expected shape and finite values;
    4. one training step of a model around the layer runs and changes every trainable
       weight that the loss reaches;
    5. the model saves to `.keras` and loads back with identical inference outputs.

    Args:
        layer_factory: Zero-argument callable returning a fresh layer.
        input_shape: (height, width, channels) of one example.
        expected_output_shape: (height, width, channels) of one output.
        tmp_path: Directory for the saved model.
        batch: Batch size of the eager call.
        seed: Seed of the random inputs.
        invariant_weights: Path suffixes of weights the loss is provably invariant to
            at initialisation (e.g. a BN scale followed by a per-channel conv and
            another BN), which step 4 does not require to move.
    """
    rng = np.random.default_rng(seed)
    layer = layer_factory()
    config = layer.get_config()
    clone = layer.__class__.from_config(config)
    assert clone.get_config() == config, "config round trip changed the config"

    dynamic = keras.Input((None, None, input_shape[-1]))
    sym = layer_factory()(dynamic)
    assert tuple(sym.shape)[-1] == expected_output_shape[-1]
    static = keras.Input(input_shape)
    probe = layer_factory()
    sym_static = probe(static)
    assert tuple(sym_static.shape)[1:] == tuple(expected_output_shape)
    assert tuple(probe.compute_output_shape((None,) + tuple(input_shape)))[1:] == tuple(
        expected_output_shape)

    x = rng.normal(size=(batch,) + tuple(input_shape)).astype("float32")
    eager = layer(x, training=False)
    assert tuple(eager.shape) == (batch,) + tuple(expected_output_shape)
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(eager)))

    inputs = keras.Input((None, None, input_shape[-1]))
    model = keras.Model(inputs, layer_factory()(inputs))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    target = rng.normal(size=(batch,) + tuple(expected_output_shape)).astype("float32")
    model.predict(x, verbose=0)
    before = [keras.ops.convert_to_numpy(w).copy() for w in model.trainable_weights]
    model.train_on_batch(x, target)
    after = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    for b, a, w in zip(before, after, model.trainable_weights):
        if w.path.endswith(tuple(invariant_weights)):
            continue
        assert not np.allclose(b, a), f"training step left {w.path} unchanged"

    path = os.path.join(tmp_path, "layer.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(model.predict(x, verbose=0), loaded.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-5)
