"""Residual spatial pyramid pooling with one window size (CAS multi-scale op set)."""

import keras
from keras import layers

from tf_nas_seg.ops.conv_op import ConvOp
from tf_nas_seg.ops.macs import out_size
from tf_nas_seg.ops.resize_like import ResizeLike


@keras.saving.register_keras_serializable(package="tf_nas_seg")
class ResidualSPP(keras.layers.Layer):
    """x + upsample(conv1x1(avgpool_w(x))): global-ish context at one window size.

    The window (8, 16 or 24 in CAS) is in pixels of the feature map it is applied to,
    with stride equal to the window; a map smaller than the window pools to one cell.

    Args:
        window: Pooling window and stride.
        affine: Learn BN scale and offset.
        order: Unit order of the 1x1 conv, see `ConvOp`.
    """

    def __init__(self, window, affine=True, order="conv_bn_relu", **kwargs):
        super().__init__(**kwargs)
        self.window = int(window)
        self.affine = bool(affine)
        self.order = order
        self.pool = layers.AveragePooling2D(self.window, strides=self.window,
                                            padding="same", name="pool")
        self.conv = None
        self.resize = ResizeLike(name="resize")

    def build(self, input_shape):
        self.conv = ConvOp(input_shape[-1], ((1, 1),), affine=self.affine,
                           order=self.order, name="conv")
        self.conv.build(self.pool.compute_output_shape(input_shape))

    def call(self, x, training=None):
        context = self.conv(self.pool(x), training=training)
        return x + self.resize(context, x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def count_macs(self, input_shape):
        """Multiply-accumulates of the 1x1 conv on the pooled grid."""
        height, width, channels = input_shape
        grid = (out_size(height, self.window), out_size(width, self.window))
        return grid[0] * grid[1] * channels * channels

    def get_config(self):
        config = super().get_config()
        config.update({"window": self.window, "affine": self.affine, "order": self.order})
        return config
