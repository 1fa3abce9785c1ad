"""One helper that checks every layer of the library the same way (keras-hub style)."""

import os

import keras
import numpy as np


def run_layer_test(layer_factory, input_shape, expected_output_shape, tmp_path,
                   batch=2, seed=0, invariant_weights=(), call=None):
    """Checks a layer end to end, with one input or several.

    1. get_config / from_config round trip gives the same config;
    2. a symbolic call with dynamic height and width, and one at a static size, give the
       expected output shapes (and `compute_output_shape` agrees);
    3. an eager call on random data gives the expected shape and finite values;
    4. one training step of a model around the layer runs and changes every trainable
       weight that the loss reaches;
    5. the model saves to `.keras` and loads back with identical inference outputs.

    Args:
        layer_factory: Zero-argument callable returning a fresh layer.
        input_shape: (height, width, channels) of one example, or a list of them for a
            layer of several inputs (a cell's s0 and s1, the head's features and image).
        expected_output_shape: (height, width, channels) of one output.
        tmp_path: Directory for the saved model.
        batch: Batch size of the eager call.
        seed: Seed of the random inputs.
        invariant_weights: Path suffixes of weights the loss is provably invariant to
            at initialisation (e.g. a BN scale followed by a per-channel conv and
            another BN), which step 4 does not require to move.
        call: `call(layer, inputs, **kwargs)` applying the layer to the list of inputs;
            default `layer(*inputs, **kwargs)` (e.g. `AggregationCell` takes the list).
    """
    several = isinstance(input_shape, list)
    shapes = [tuple(s) for s in (input_shape if several else [input_shape])]
    expected = tuple(expected_output_shape)
    if call is None:
        def call(layer, inputs, **kwargs):
            return layer(*inputs, **kwargs)

    rng = np.random.default_rng(seed)
    layer = layer_factory()
    config = layer.get_config()
    clone = layer.__class__.from_config(config)
    assert clone.get_config() == config, "config round trip changed the config"

    dynamic = [keras.Input((None, None, s[-1])) for s in shapes]
    sym = call(layer_factory(), dynamic)
    assert tuple(sym.shape)[-1] == expected[-1]
    static = [keras.Input(s) for s in shapes]
    probe = layer_factory()
    sym_static = call(probe, static)
    assert tuple(sym_static.shape)[1:] == expected
    if not several:
        assert tuple(probe.compute_output_shape((None,) + shapes[0]))[1:] == expected

    xs = [rng.normal(size=(batch,) + s).astype("float32") for s in shapes]
    eager = call(layer, xs, training=False)
    assert tuple(eager.shape) == (batch,) + expected
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(eager)))

    inputs = [keras.Input((None, None, s[-1])) for s in shapes]
    model = keras.Model(inputs if several else inputs[0], call(layer_factory(), inputs))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x = xs if several else xs[0]
    target = rng.normal(size=(batch,) + expected).astype("float32")
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
