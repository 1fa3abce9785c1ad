"""BiSeNet V2's bilateral guided aggregation: detail and semantic features gate each other."""

import keras
from keras import layers, ops

from tf_nas_seg.ops.batch_norm import BatchNorm
from tf_nas_seg.ops.conv_op import ConvOp
from tf_nas_seg.ops.macs import conv_macs
from tf_nas_seg.ops.resize_like import ResizeLike


@keras.saving.register_keras_serializable(package="tf_nas_seg")
class GuidedAggregation(keras.layers.Layer):
    """Fuses high-resolution detail features with low-resolution semantic features.

    Four paths (paper, figure 6):
      detail at its resolution: 3x3 depthwise conv, BN, 1x1 conv;
      detail down to the semantic resolution: 3x3 conv with stride 2, BN, 3x3 average
        pooling with stride 2 (detail at stride 8, semantic at stride 32);
      semantic up to the detail resolution: 3x3 conv, BN, bilinear upsampling, sigmoid;
      semantic at its resolution: 3x3 depthwise conv, BN, 1x1 conv, sigmoid.
    The output is a 3x3 conv-BN-ReLU of
    `detail * sigmoid(up(semantic)) + up(down(detail) * sigmoid(semantic))`.

    Upsampling resizes to the detail map's exact size (`ResizeLike`) instead of by a
    fixed factor 4, so inputs whose size is not a multiple of 32 work, at any (dynamic)
    size. 'same' average pooling excludes the padding from the mean (TensorFlow's
    convention). The final ReLU is not drawn in the paper; the public
    reimplementations have it.

    Args:
        filters: Channels of every path and of the output.
    """

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.resize = ResizeLike(name="resize")

    def build(self, detail_shape, semantic_shape):
        f = self.filters
        self.detail_dw = layers.DepthwiseConv2D(3, padding="same", use_bias=False,
                                                name="detail_dw")
        self.detail_dw_bn = BatchNorm(name="detail_dw_bn")
        self.detail_pw = layers.Conv2D(f, 1, use_bias=False, name="detail_pw")
        self.down_conv = layers.Conv2D(f, 3, strides=2, padding="same", use_bias=False,
                                       name="down_conv")
        self.down_bn = BatchNorm(name="down_bn")
        self.down_pool = layers.AveragePooling2D(3, strides=2, padding="same",
                                                 name="down_pool")
        self.up_conv = layers.Conv2D(f, 3, padding="same", use_bias=False, name="up_conv")
        self.up_bn = BatchNorm(name="up_bn")
        self.semantic_dw = layers.DepthwiseConv2D(3, padding="same", use_bias=False,
                                                  name="semantic_dw")
        self.semantic_dw_bn = BatchNorm(name="semantic_dw_bn")
        self.semantic_pw = layers.Conv2D(f, 1, use_bias=False, name="semantic_pw")
        self.fuse = ConvOp(f, ((3, 3),), name="fuse")

        self.detail_dw.build(detail_shape)
        self.detail_dw_bn.build(detail_shape)
        self.detail_pw.build(detail_shape)
        self.down_conv.build(detail_shape)
        self.down_bn.build(self.down_conv.compute_output_shape(detail_shape))
        self.up_conv.build(semantic_shape)
        self.up_bn.build(self.up_conv.compute_output_shape(semantic_shape))
        self.semantic_dw.build(semantic_shape)
        self.semantic_dw_bn.build(semantic_shape)
        self.semantic_pw.build(semantic_shape)
        self.fuse.build(tuple(detail_shape[:3]) + (f,))

    def call(self, detail, semantic, training=None):
        keep = self.detail_pw(self.detail_dw_bn(self.detail_dw(detail), training=training))
        down = self.down_pool(self.down_bn(self.down_conv(detail), training=training))
        up = self.up_bn(self.up_conv(semantic), training=training)
        gate = self.semantic_pw(self.semantic_dw_bn(self.semantic_dw(semantic),
                                                    training=training))
        high = keep * ops.sigmoid(self.resize(up, detail))
        low = self.resize(down * ops.sigmoid(gate), detail)
        return self.fuse(high + low, training=training)

    def compute_output_shape(self, detail_shape, semantic_shape):
        del semantic_shape
        return tuple(detail_shape[:3]) + (self.filters,)

    def count_macs(self, detail_shape, semantic_shape):
        """Multiply-accumulates for (height, width, channels) detail and semantic inputs."""
        height, width, c_detail = detail_shape
        h_sem, w_sem, c_sem = semantic_shape
        f = self.filters
        total = conv_macs(height, width, c_detail, c_detail, (3, 3), groups=c_detail)
        total += conv_macs(height, width, c_detail, f, (1, 1))
        total += conv_macs(height, width, c_detail, f, (3, 3), 2)
        total += conv_macs(h_sem, w_sem, c_sem, f, (3, 3))
        total += conv_macs(h_sem, w_sem, c_sem, c_sem, (3, 3), groups=c_sem)
        total += conv_macs(h_sem, w_sem, c_sem, f, (1, 1))
        return total + conv_macs(height, width, f, f, (3, 3))

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters})
        return config
