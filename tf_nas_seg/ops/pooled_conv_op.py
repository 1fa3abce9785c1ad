"""CAS "pooled conv": 2x2 average pool, 3x3 conv(s), bilinear upsample back."""

import keras
from keras import layers

from tf_nas_seg.ops.conv_op import ConvOp
from tf_nas_seg.ops.macs import out_size
from tf_nas_seg.ops.resize_like import ResizeLike


@keras.saving.register_keras_serializable(package="tf_nas_seg")
class PooledConvOp(keras.layers.Layer):
    """Runs its convolutions at half resolution to enlarge the receptive field cheaply.

    With stride 1 the result is resized back to the input size; with stride 2 the
    pooled size already is the op's output size and no resize is needed.

    Args:
        filters: Output channels.
        repeats: Number of 3x3 conv-BN-ReLU units (1 or 2 in CAS).
        strides: 1 or 2.
        affine: Learn BN scale and offset.
        order: Unit order, see `ConvOp`.
    """

    def __init__(self, filters, repeats=1, strides=1, affine=True, order="conv_bn_relu",
                 **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.repeats = int(repeats)
        self.strides = int(strides)
        self.affine = bool(affine)
        self.order = order
        self.pool = layers.AveragePooling2D(2, strides=2, padding="same", name="pool")
        self.conv = ConvOp(self.filters, ((3, 3),) * self.repeats, affine=self.affine,
                           order=self.order, name="conv")
        self.resize = ResizeLike(name="resize")

    def build(self, input_shape):
        pooled = self.pool.compute_output_shape(input_shape)
        self.conv.build(pooled)

    def call(self, x, training=None):
        y = self.conv(self.pool(x), training=training)
        if self.strides == 1:
            y = self.resize(y, x)
        return y

    def compute_output_shape(self, input_shape):
        def reduce(size):
            return None if size is None else out_size(size, self.strides)
        return (input_shape[0], reduce(input_shape[1]), reduce(input_shape[2]), self.filters)

    def count_macs(self, input_shape):
        """Multiply-accumulates of the convolutions at half resolution."""
        height, width, channels = input_shape
        return self.conv.count_macs((out_size(height, 2), out_size(width, 2), channels))

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "repeats": self.repeats,
                       "strides": self.strides, "affine": self.affine, "order": self.order})
        return config
