"""BiSeNet V2's context embedding block: global context added back to every position."""

import keras
from keras import ops

from tf_nas_seg.ops.batch_norm import BatchNorm
from tf_nas_seg.ops.conv_op import ConvOp
from tf_nas_seg.ops.macs import conv_macs


@keras.saving.register_keras_serializable(package="tf_nas_seg")
class ContextEmbedding(keras.layers.Layer):
    """Global average pool, BN, 1x1 conv-BN-ReLU, broadcast add to x, 3x3 conv-BN-ReLU.

    The pooled vector is a mean over the runtime height and width (`keras.ops.mean`),
    so the block works at any input size and exports with dynamic height and width.

    NOTE: the paper draws the last 3x3 conv without batch normalisation and ReLU; like
    the public reimplementations (CoinCheung/BiSeNet, mmsegmentation), it is a
    conv-BN-ReLU unit here, as every other conv of the network.

    Args:
        filters: Output channels of the last 3x3 conv (the pooled branch keeps the
            input's channels, which the broadcast addition needs).
    """

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)

    def build(self, input_shape):
        channels = input_shape[-1]
        self.pool_bn = BatchNorm(name="pool_bn")
        self.pool_conv = ConvOp(channels, ((1, 1),), name="pool_conv")
        self.fuse = ConvOp(self.filters, ((3, 3),), name="fuse")
        pooled = (input_shape[0], 1, 1, channels)
        self.pool_bn.build(pooled)
        self.pool_conv.build(pooled)
        self.fuse.build(input_shape)

    def call(self, x, training=None):
        pooled = ops.mean(x, axis=(1, 2), keepdims=True)
        pooled = self.pool_conv(self.pool_bn(pooled, training=training), training=training)
        return self.fuse(x + pooled, training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:3]) + (self.filters,)

    def count_macs(self, input_shape):
        """Multiply-accumulates for one (height, width, channels) input."""
        height, width, channels = input_shape
        return (conv_macs(1, 1, channels, channels, (1, 1))
                + conv_macs(height, width, channels, self.filters, (3, 3)))

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters})
        return config
