"""The MobileNetV2 inverted-residual bottleneck (hand-designed peers, e.g. Fast-SCNN)."""

import keras
from keras import layers

from tf_nas_seg.ops.batch_norm import BatchNorm
from tf_nas_seg.ops.conv_op import ConvOp
from tf_nas_seg.ops.macs import conv_macs, out_size


@keras.saving.register_keras_serializable(package="tf_nas_seg")
class InvertedResidual(keras.layers.Layer):
    """1x1 expansion conv-BN-ReLU, 3x3 depthwise conv-BN-ReLU, 1x1 linear projection-BN.

    The input is added back when the stride is 1 and the channel count is unchanged.

    Args:
        filters: Output channels.
        expansion: Hidden channels = expansion x input channels.
        strides: Stride of the depthwise conv, 1 or 2.
    """

    def __init__(self, filters, expansion=6, strides=1, **kwargs):
        super().__init__(**kwargs)
        if strides not in (1, 2):
            raise ValueError(f"strides must be 1 or 2, got {strides}")
        self.filters = int(filters)
        self.expansion = int(expansion)
        self.strides = int(strides)

    def build(self, input_shape):
        channels = input_shape[-1]
        hidden = channels * self.expansion
        self.residual = self.strides == 1 and channels == self.filters
        self.expand = ConvOp(hidden, ((1, 1),), name="expand")
        self.depthwise = layers.DepthwiseConv2D(3, strides=self.strides, padding="same",
                                                use_bias=False, name="depthwise")
        self.dw_bn = BatchNorm(name="dw_bn")
        self.project = layers.Conv2D(self.filters, 1, use_bias=False, name="project")
        self.project_bn = BatchNorm(name="project_bn")
        self.expand.build(input_shape)
        shape = self.expand.compute_output_shape(input_shape)
        self.depthwise.build(shape)
        shape = self.depthwise.compute_output_shape(shape)
        self.dw_bn.build(shape)
        self.project.build(shape)
        self.project_bn.build(self.project.compute_output_shape(shape))

    def call(self, x, training=None):
        y = self.expand(x, training=training)
        y = keras.ops.relu(self.dw_bn(self.depthwise(y), training=training))
        y = self.project_bn(self.project(y), training=training)
        return x + y if self.residual else y

    def compute_output_shape(self, input_shape):
        def reduce(size):
            return None if size is None else out_size(size, self.strides)
        return (input_shape[0], reduce(input_shape[1]), reduce(input_shape[2]), self.filters)

    def count_macs(self, input_shape):
        """Multiply-accumulates for one (height, width, channels) input."""
        height, width, channels = input_shape
        hidden = channels * self.expansion
        total = conv_macs(height, width, channels, hidden, (1, 1))
        total += conv_macs(height, width, hidden, hidden, (3, 3), self.strides, groups=hidden)
        h, w = out_size(height, self.strides), out_size(width, self.strides)
        return total + conv_macs(h, w, hidden, self.filters, (1, 1))

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "expansion": self.expansion,
                       "strides": self.strides})
        return config
