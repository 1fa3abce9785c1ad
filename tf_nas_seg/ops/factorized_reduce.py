"""Halves the spatial size with two offset 1x1 stride-2 convolutions (DARTS)."""

import keras
from keras import layers, ops

from tf_nas_seg.ops.batch_norm import BatchNorm
from tf_nas_seg.ops.macs import conv_macs


@keras.saving.register_keras_serializable(package="tf_nas_seg")
class FactorizedReduce(keras.layers.Layer):
    """ReLU, two 1x1 stride-2 convs on pixel grids offset by one, concat, BN.

    Used as the stride-2 identity and to preprocess a cell input that has twice the
    spatial size of the other. Odd sizes are handled: the offset grid is padded at the
    bottom/right so both halves have ceil(size / 2) rows and columns.

    Args:
        filters: Output channels (split as evenly as possible between the two convs).
        affine: Learn BN scale and offset.
    """

    def __init__(self, filters, affine=True, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.affine = bool(affine)
        half = self.filters // 2
        self.conv_a = layers.Conv2D(half, 1, strides=2, use_bias=False, name="conv_a")
        self.conv_b = layers.Conv2D(self.filters - half, 1, strides=2, use_bias=False,
                                    name="conv_b")
        self.bn = BatchNorm(affine=self.affine, name="bn")

    def build(self, input_shape):
        self.conv_a.build(input_shape)
        self.conv_b.build(input_shape)
        self.bn.build(self.compute_output_shape(input_shape))

    def call(self, x, training=None):
        x = ops.relu(x)
        shifted = ops.pad(x, [[0, 0], [0, 1], [0, 1], [0, 0]])[:, 1:, 1:, :]
        return self.bn(ops.concatenate([self.conv_a(x), self.conv_b(shifted)], axis=-1),
                       training=training)

    def compute_output_shape(self, input_shape):
        def reduce(size):
            return None if size is None else (size + 1) // 2
        return (input_shape[0], reduce(input_shape[1]), reduce(input_shape[2]),
                self.filters)

    def count_macs(self, input_shape):
        """Multiply-accumulates of the two 1x1 convolutions."""
        height, width, channels = input_shape
        half = self.filters // 2
        return (conv_macs(height, width, channels, half, (1, 1), 2)
                + conv_macs(height, width, channels, self.filters - half, (1, 1), 2))

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "affine": self.affine})
        return config
