"""The BiSeNet V2-style peer and its layers: size, any input size, training, saving, MACs."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.layer_test_helper import run_layer_test
from tf_nas_seg.networks import PEERS, build_bisenetv2, build_network, count_trainable_params
from tf_nas_seg.networks.model_macs import count_model_macs, graph_macs
from tf_nas_seg.networks.stem import SegmentationHead
from tf_nas_seg.ops.context_embedding import ContextEmbedding
from tf_nas_seg.ops.conv_op import ConvOp
from tf_nas_seg.ops.gather_expand import GatherExpand
from tf_nas_seg.ops.guided_aggregation import GuidedAggregation
from tf_nas_seg.train.ohem import SegmentationLoss
from tf_nas_seg.train.train_config import PEERS as TRAIN_PEERS

SMALL = dict(width_multiplier=0.25)


def _images(rng, batch, size):
    return rng.uniform(0, 255, (batch,) + size + (3,)).astype("float32")


def test_bisenetv2_has_the_published_size():
    # BiSeNet V2 reports 3.4 M parameters; with the head's 1024-channel 3x3 conv (the
    # width the public reimplementations use) this count is 3.36 M at 19 classes.
    model = build_bisenetv2(19)
    assert count_trainable_params(model) == 3_358_627
    assert 3.3e6 < count_trainable_params(model) < 3.5e6
    # Only the 1x1 classifier (1024 inputs + bias per class) depends on the classes.
    assert count_trainable_params(build_bisenetv2(11)) == 3_358_627 - 8 * 1025


def test_bisenetv2_is_a_registered_peer():
    assert "bisenetv2" in PEERS and "bisenetv2" in TRAIN_PEERS
    model = build_network(None, 5, peer="bisenetv2", **SMALL)
    assert model.name == "bisenetv2"
    assert count_trainable_params(model) < count_trainable_params(build_bisenetv2(5)) / 8


def test_bisenetv2_gives_logits_at_any_input_size():
    model = build_bisenetv2(5, **SMALL)
    rng = np.random.default_rng(0)
    # 75x101 is not a multiple of 32: the stride-8 and stride-32 maps are rounded up.
    for size in ((64, 128), (75, 101)):
        out = model(_images(rng, 1, size), training=False)
        assert out.shape == (1,) + size + (5,)
        assert np.all(np.isfinite(keras.ops.convert_to_numpy(out)))


def test_bisenetv2_trains_one_step_and_saves(tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(1)
    model = build_bisenetv2(4, **SMALL)
    images = _images(rng, 2, (64, 128))
    labels = rng.integers(0, 4, (2, 64, 128)).astype("int32")
    labels[:, :4] = 255
    model.compile(optimizer=keras.optimizers.SGD(0.05),
                  loss=SegmentationLoss("ohem", threshold=0.9, min_kept=0.1))
    # BN scales and offsets followed by a per-channel op and another batch norm get no
    # gradient at initialisation, so only convolution kernels must all move.
    kernels = [w for w in model.trainable_weights
               if not w.path.endswith(("gamma", "beta"))]
    before = [keras.ops.convert_to_numpy(w).copy() for w in kernels]
    loss = float(model.train_on_batch(images, labels))
    after = [keras.ops.convert_to_numpy(w) for w in kernels]
    assert np.isfinite(loss)
    unchanged = [w.path for w, b, a in zip(kernels, before, after) if np.allclose(b, a)]
    assert len(kernels) > 40 and len(unchanged) <= 0.1 * len(kernels), unchanged
    # The trained network (moving statistics updated) loads back as the same function.
    model.save(tmp_path / "bisenetv2.keras")
    loaded = keras.saving.load_model(tmp_path / "bisenetv2.keras", compile=False)
    x = _images(rng, 1, (40, 72))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x, training=False)),
                               keras.ops.convert_to_numpy(model(x, training=False)),
                               rtol=1e-5, atol=1e-5)


def _layer_macs(model):
    """Sum of the layers' own MAC counts, from the shapes of a static-shape model."""
    def hwc(tensor):
        return tuple(tensor.shape[1:])
    total = 0
    for layer in model.layers:
        if isinstance(layer, GuidedAggregation):
            detail, semantic = layer.input
            total += layer.count_macs(hwc(detail), hwc(semantic))
        elif isinstance(layer, SegmentationHead):
            total += layer.count_macs(hwc(layer.input[0]))
        elif isinstance(layer, (ConvOp, GatherExpand, ContextEmbedding)):
            total += layer.count_macs(hwc(layer.input))
    return total


def test_bisenetv2_graph_macs_equal_the_layers_own_counts():
    model = build_bisenetv2(11, input_shape=(72, 96, 3), **SMALL)
    macs = count_model_macs(model, 72, 96)
    assert macs > 0 and macs == _layer_macs(model)


def test_bisenetv2_mac_count_at_camvid_size():
    # Full width, 11 classes, 360x480: the dense 3x3 convs of the detail branch and the
    # head's 1024-channel conv at stride 8 dominate.
    assert count_model_macs(build_bisenetv2(11), 360, 480) == 8_103_675_904


@pytest.mark.parametrize("strides, channels", [(1, 8), (2, 12)])
def test_gather_expand_serializes_trains_and_counts_macs(strides, channels, tmp_path):
    size = 16 // strides
    # gather/bn0/gamma scales each channel before ReLU, a depthwise conv and a batch
    # norm, which normalises the scale away (beta is 0 as initialised); at stride 2
    # so does expand_bn/gamma before the second depthwise conv and its batch norm, and
    # shortcut_dw_bn/beta shifts channels before a 1x1 conv and a batch norm, which
    # normalises the shift away.
    invariant = ("gather/bn0/gamma",) + (("expand_bn/gamma", "shortcut_dw_bn/beta")
                                         if strides == 2 else ())
    run_layer_test(lambda: GatherExpand(channels, expansion=3, strides=strides),
                   (16, 16, 8), (size, size, channels), tmp_path,
                   invariant_weights=invariant)
    layer = GatherExpand(channels, expansion=3, strides=strides)
    inputs = keras.Input((16, 24, 8))
    model = keras.Model(inputs, layer(inputs))
    assert count_model_macs(model, 16, 24, channels=8) == layer.count_macs((16, 24, 8))


def test_context_embedding_serializes_trains_and_counts_macs(tmp_path):
    # Batch 4: the pooled branch normalises one value per image over the batch.
    # pool_bn/beta shifts the pooled channels before a 1x1 conv of a 1x1 map and a
    # batch norm, which normalises the shift away.
    run_layer_test(lambda: ContextEmbedding(6), (8, 8, 8), (8, 8, 6), tmp_path, batch=4,
                   invariant_weights=("pool_bn/beta",))
    layer = ContextEmbedding(6)
    inputs = keras.Input((5, 7, 8))
    model = keras.Model(inputs, layer(inputs))
    assert count_model_macs(model, 5, 7, channels=8) == layer.count_macs((5, 7, 8))


def test_guided_aggregation_serializes_trains_and_counts_macs(tmp_path):
    # Two inputs, so the single-input helper's checks are written out here.
    layer = GuidedAggregation(8)
    config = layer.get_config()
    assert GuidedAggregation.from_config(config).get_config() == config
    detail_in = keras.Input((None, None, 12))
    semantic_in = keras.Input((None, None, 6))
    out = GuidedAggregation(8)(detail_in, semantic_in)
    assert tuple(out.shape) == (None, None, None, 8)
    model = keras.Model([detail_in, semantic_in], out)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    rng = np.random.default_rng(0)
    # Detail at stride 8 and semantic at stride 32 of a 76x100 image: 10x13 and 3x4.
    detail = rng.normal(size=(2, 10, 13, 12)).astype("float32")
    semantic = rng.normal(size=(2, 3, 4, 6)).astype("float32")
    target = rng.normal(size=(2, 10, 13, 8)).astype("float32")
    assert model.predict([detail, semantic], verbose=0).shape == (2, 10, 13, 8)
    before = [keras.ops.convert_to_numpy(w).copy() for w in model.trainable_weights]
    model.train_on_batch([detail, semantic], target)
    after = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    for b, a, w in zip(before, after, model.trainable_weights):
        # detail_dw_bn and semantic_dw_bn feed a 1x1 conv with no batch norm after it,
        # so every weight reaches the loss.
        assert not np.allclose(b, a), f"training step left {w.path} unchanged"
    model.save(tmp_path / "bga.keras")
    loaded = keras.saving.load_model(tmp_path / "bga.keras")
    np.testing.assert_allclose(model.predict([detail, semantic], verbose=0),
                               loaded.predict([detail, semantic], verbose=0),
                               rtol=1e-5, atol=1e-5)
    specs = [tf.TensorSpec((1, 10, 13, 12), tf.float32),
             tf.TensorSpec((1, 3, 4, 6), tf.float32)]
    function = tf.function(lambda d, s: model([d, s], training=False))
    macs = graph_macs(function.get_concrete_function(*specs).graph)
    assert macs > 0 and macs == layer.count_macs((10, 13, 12), (3, 4, 6))
