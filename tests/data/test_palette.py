"""Drawing label maps with a data set's palette."""

import numpy as np
import pytest
import tensorflow as tf

from tf_nas_seg.data import CAMVID, CITYSCAPES, colorize


def test_colorize_uses_palette_and_draws_ignore_black():
    label = np.array([[0, 3], [255, 10]])
    rgb = colorize(label, CAMVID)
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 2, 3)
    assert tuple(rgb[0, 0]) == CAMVID.palette[0]
    assert tuple(rgb[0, 1]) == CAMVID.palette[3]
    assert tuple(rgb[1, 0]) == (0, 0, 0)
    assert tuple(rgb[1, 1]) == CAMVID.palette[10]


def test_colorize_accepts_tensors_and_batches():
    label = tf.constant([[[18, 0]], [[13, 255]]], tf.int32)
    rgb = colorize(label, CITYSCAPES)
    assert rgb.shape == (2, 1, 2, 3)
    assert tuple(rgb[1, 0, 0]) == (0, 0, 142)


def test_colorize_rejects_values_outside_the_classes():
    with pytest.raises(ValueError, match="11"):
        colorize(np.array([11]), CAMVID)
