"""Augmentation: aligned image/mask, ignore-label fill, nearest masks, stateless seeds."""

import numpy as np
import pytest
import tensorflow as tf

from tf_nas_seg.data import AugmentConfig, SegmentationAugmenter

# A label map of 4x4 blocks and an image whose colour encodes the label, so the
# label of a pixel can be read back from its colour after any geometric transform.
_BLOCKS = np.random.default_rng(0).choice(np.array([0, 1, 2, 3, 4, 255]), (8, 10))
LABEL = np.kron(_BLOCKS, np.ones((4, 4), np.int64)).astype(np.uint8)  # 32 x 40
COLOURS = {0: (200, 0, 0), 1: (0, 200, 0), 2: (0, 0, 200), 3: (200, 200, 0),
           4: (0, 200, 200), 255: (100, 100, 100)}
IMAGE = np.stack([np.vectorize(lambda v, c=c: COLOURS[v][c])(LABEL) for c in range(3)],
                 -1).astype(np.uint8)


def _run(config, seed):
    augmenter = SegmentationAugmenter(config)
    image, label = augmenter(tf.constant(IMAGE), tf.constant(LABEL),
                             tf.constant([seed, 17], tf.int64))
    return image.numpy(), label.numpy()


def test_output_dtypes_and_shape():
    image, label = _run(AugmentConfig(crop_size=(20, 30)), 0)
    assert image.dtype == np.float32 and image.shape == (20, 30, 3)
    assert label.dtype == np.int32 and label.shape == (20, 30)


def test_padding_is_black_image_and_ignore_label():
    # Scale 0.5 then crop back to 32x40: the scaled 16x20 image sits top-left.
    image, label = _run(AugmentConfig(flip=False, scale_range=(0.5, 0.5)), 3)
    assert (label[16:, :] == 255).all() and (label[:, 20:] == 255).all()
    assert (image[16:, :] == 0).all() and (image[:, 20:] == 0).all()
    np.testing.assert_array_equal(label[:16, :20], LABEL[1::2, 1::2])


def test_class_zero_is_not_confused_with_padding():
    zeros = np.zeros((8, 8), np.uint8)
    augmenter = SegmentationAugmenter(AugmentConfig(flip=False, scale_range=(0.5, 0.5),
                                                    crop_size=(8, 8)))
    _, label = augmenter(tf.zeros((8, 8, 3)), tf.constant(zeros), tf.constant([0, 0]))
    assert (label.numpy()[:4, :4] == 0).all() and (label.numpy()[4:] == 255).all()


@pytest.mark.parametrize("seed", range(6))
def test_crop_and_flip_keep_image_and_mask_aligned_exactly(seed):
    # Scale 1 resamples nothing, so every pixel must keep its label's colour
    # (padding excepted: black image, ignore label).
    image, label = _run(AugmentConfig(scale_range=(1.0, 1.0), crop_size=(36, 30)), seed)
    padded = (image == 0).all(-1)
    assert padded.any() and (label[padded] == 255).all()
    expected = np.array([COLOURS[v] for v in label.ravel()]).reshape(image.shape)
    np.testing.assert_array_equal(image[~padded], expected[~padded])


@pytest.mark.parametrize("seed", range(6))
def test_scaled_masks_use_nearest_neighbour_and_stay_aligned(seed):
    # The image is a linear ramp of the source coordinates (y * 8, x * 6, 100).
    # Bilinear resampling reproduces a linear ramp exactly, so each output pixel
    # tells where in the input it came from; the mask, resampled with nearest
    # neighbour, must hold the label of the nearest input pixel there.
    yy, xx = np.mgrid[0:32, 0:40]
    ramp = np.stack([yy * 8, xx * 6, np.full_like(yy, 100)], -1).astype(np.uint8)
    config = AugmentConfig(flip=True, scale_range=(0.5, 2.0), crop_size=(28, 36))
    image, label = SegmentationAugmenter(config)(
        tf.constant(ramp), tf.constant(LABEL), tf.constant([seed, 5], tf.int64))
    image, label = image.numpy(), label.numpy()
    # Nearest neighbour: no value appears that was not in the input (or padding).
    assert set(np.unique(label).tolist()) <= set(np.unique(LABEL).tolist()) | {255}
    padded = image[..., 2] == 0
    assert (label[padded] == 255).all()
    source_y = np.clip(np.round(image[..., 0] / 8), 0, 31).astype(int)
    source_x = np.clip(np.round(image[..., 1] / 6), 0, 39).astype(int)
    agree = LABEL[source_y, source_x] == label
    # Exact up to rounding ties at half-pixel positions.
    assert agree[~padded].mean() > 0.97


def test_flip_mirrors_image_and_mask_together():
    config = AugmentConfig(flip=True, scale_range=None)
    outcomes = set()
    for seed in range(16):
        image, label = _run(config, seed)
        flipped = np.array_equal(label, LABEL[:, ::-1])
        assert flipped or np.array_equal(label, LABEL)
        np.testing.assert_array_equal(image, (IMAGE[:, ::-1] if flipped else IMAGE))
        outcomes.add(flipped)
    assert outcomes == {True, False}


def test_same_seed_same_output_in_graph_and_eagerly():
    config = AugmentConfig(crop_size=(20, 24))
    eager = _run(config, 42)
    augmenter = SegmentationAugmenter(config)
    graph = tf.function(augmenter)(tf.constant(IMAGE), tf.constant(LABEL),
                                   tf.constant([42, 17], tf.int64))
    np.testing.assert_array_equal(eager[0], graph[0].numpy())
    np.testing.assert_array_equal(eager[1], graph[1].numpy())
    different = _run(config, 43)
    assert not np.array_equal(eager[1], different[1])


def test_fixed_resize_uses_keras_resizing_with_nearest_masks():
    config = AugmentConfig(flip=False, scale_range=None, resize=(13, 17))
    image, label = _run(config, 0)
    assert image.shape == (13, 17, 3) and label.shape == (13, 17)
    assert set(np.unique(label).tolist()) <= set(np.unique(LABEL).tolist())


def test_config_validation():
    with pytest.raises(ValueError, match="scale_range"):
        AugmentConfig(scale_range=(2.0, 1.0))
    with pytest.raises(ValueError, match="crop_size"):
        AugmentConfig(crop_size=(0, 4))
    assert AugmentConfig(crop_size=(4, 5)).output_size((9, 9)) == (4, 5)
    assert AugmentConfig(resize=(6, 7)).output_size(None) == (6, 7)
    assert AugmentConfig().output_size((9, 9)) == (9, 9)
