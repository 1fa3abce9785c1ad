"""BiSeNet V2's gather-and-expand layer, the unit of its semantic branch."""

import keras
from keras import layers

from tf_nas_seg.ops.batch_norm import BatchNorm
from tf_nas_seg.ops.conv_op import ConvOp
from tf_nas_seg.ops.macs import conv_macs, out_size


@keras.saving.register_keras_serializable(package="tf_nas_seg")
class GatherExpand(keras.layers.Layer):
    """3x3 conv-BN-ReLU, 3x3 depthwise expansion, 1x1 projection-BN, shortcut, ReLU.

    The 3x3 conv gathers local responses at the input width; a 3x3 depthwise conv
    with channel multiplier `expansion` expands them to `expansion` x input channels
    (BN); at stride 2 it carries the stride and a second 3x3 depthwise conv (BN) at
    the expanded width follows, enlarging the receptive field. A ReLU follows the last
    depthwise conv, then a linear 1x1 projection to `filters` (BN). The shortcut is the
    identity when the stride is 1 and the channel count is unchanged, otherwise a
    3x3 depthwise conv (BN) with the stride and a 1x1 conv (BN), the paper's separable
    shortcut. The sum goes through a ReLU.

    NOTE: the ReLU after the expansion is not drawn in the paper's figure 5; public
    reimplementations (CoinCheung/BiSeNet, mmsegmentation) add it, as MobileNetV2 has
    one after its depthwise conv, and train to the published accuracy with it.

    Args:
        filters: Output channels.
        expansion: Expanded channels = expansion x input channels (the paper: 6).
        strides: Stride of the first depthwise conv, 1 or 2.
    """

    def __init__(self, filters, expansion=6, strides=1, **kwargs):
        super().__init__(**kwargs)
        if strides not in (1, 2):
            raise ValueError(f"strides must be 1 or 2, got {strides}")
        if expansion < 1:
            raise ValueError(f"expansion must be >= 1, got {expansion}")
        self.filters = int(filters)
        self.expansion = int(expansion)
        self.strides = int(strides)

    def build(self, input_shape):
        channels = input_shape[-1]
        self.residual = self.strides == 1 and channels == self.filters
        self.gather = ConvOp(channels, ((3, 3),), name="gather")
        self.expand = layers.DepthwiseConv2D(3, strides=self.strides, padding="same",
                                             depth_multiplier=self.expansion,
                                             use_bias=False, name="expand")
        self.expand_bn = BatchNorm(name="expand_bn")
        self.gather.build(input_shape)
        shape = self.gather.compute_output_shape(input_shape)
        self.expand.build(shape)
        shape = self.expand.compute_output_shape(shape)
        self.expand_bn.build(shape)
        if self.strides > 1:
            self.depthwise = layers.DepthwiseConv2D(3, padding="same", use_bias=False,
                                                    name="depthwise")
            self.depthwise_bn = BatchNorm(name="depthwise_bn")
            self.depthwise.build(shape)
            self.depthwise_bn.build(shape)
        self.project = layers.Conv2D(self.filters, 1, use_bias=False, name="project")
        self.project_bn = BatchNorm(name="project_bn")
        self.project.build(shape)
        self.project_bn.build(self.project.compute_output_shape(shape))
        if not self.residual:
            self.shortcut_dw = layers.DepthwiseConv2D(3, strides=self.strides,
                                                      padding="same", use_bias=False,
                                                      name="shortcut_dw")
            self.shortcut_dw_bn = BatchNorm(name="shortcut_dw_bn")
            self.shortcut_pw = layers.Conv2D(self.filters, 1, use_bias=False,
                                             name="shortcut_pw")
            self.shortcut_pw_bn = BatchNorm(name="shortcut_pw_bn")
            self.shortcut_dw.build(input_shape)
            shape = self.shortcut_dw.compute_output_shape(input_shape)
            self.shortcut_dw_bn.build(shape)
            self.shortcut_pw.build(shape)
            self.shortcut_pw_bn.build(self.shortcut_pw.compute_output_shape(shape))

    def call(self, x, training=None):
        y = self.gather(x, training=training)
        y = self.expand_bn(self.expand(y), training=training)
        if self.strides > 1:
            y = self.depthwise_bn(self.depthwise(y), training=training)
        y = keras.ops.relu(y)
        y = self.project_bn(self.project(y), training=training)
        if self.residual:
            shortcut = x
        else:
            shortcut = self.shortcut_dw_bn(self.shortcut_dw(x), training=training)
            shortcut = self.shortcut_pw_bn(self.shortcut_pw(shortcut), training=training)
        return keras.ops.relu(y + shortcut)

    def compute_output_shape(self, input_shape):
        def reduce(size):
            return None if size is None else out_size(size, self.strides)
        return (input_shape[0], reduce(input_shape[1]), reduce(input_shape[2]), self.filters)

    def count_macs(self, input_shape):
        """Multiply-accumulates for one (height, width, channels) input."""
        height, width, channels = input_shape
        hidden = channels * self.expansion
        total = conv_macs(height, width, channels, channels, (3, 3))
        total += conv_macs(height, width, channels, hidden, (3, 3), self.strides,
                           groups=channels)
        h, w = out_size(height, self.strides), out_size(width, self.strides)
        if self.strides > 1:
            total += conv_macs(h, w, hidden, hidden, (3, 3), groups=hidden)
        total += conv_macs(h, w, hidden, self.filters, (1, 1))
        if not (self.strides == 1 and channels == self.filters):
            total += conv_macs(height, width, channels, channels, (3, 3), self.strides,
                               groups=channels)
            total += conv_macs(h, w, channels, self.filters, (1, 1))
        return total

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "expansion": self.expansion,
                       "strides": self.strides})
        return config
