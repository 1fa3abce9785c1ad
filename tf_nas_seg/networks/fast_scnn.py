"""A Fast-SCNN-style hand-designed peer, built from the same op library as searched nets.

Fast-SCNN (Poudel et al., BMVC 2019) is the standard light real-time segmenter: a
learning-to-downsample module (stride 8), a global feature extractor of inverted
residual bottlenecks with pyramid pooling (stride 32), a fusion of the two branches and a
light classifier. It exists here so that searched networks can be compared with a
hand-designed one trained by the same pipeline, on equal terms.

Differences from the paper, all deliberate: the depthwise-separable units are the op
library's `ConvOp(separable=True)` (one BN + ReLU after the pointwise conv, as in the
search spaces, instead of after both convs); ReLU instead of ReLU6; the fusion's
low-resolution branch uses a dilation-1 depthwise conv; no auxiliary losses.
"""

import keras
from keras import layers

from tf_nas_seg.networks.stem import SegmentationHead, normalization_layer
from tf_nas_seg.ops.batch_norm import BatchNorm
from tf_nas_seg.ops.conv_op import ConvOp
from tf_nas_seg.ops.inverted_residual import InvertedResidual
from tf_nas_seg.ops.pyramid_pooling import PyramidPooling
from tf_nas_seg.ops.resize_like import ResizeLike
from tf_nas_seg.errors import ConfigError

# (output channels, blocks, stride of the first block) of the global feature extractor.
_BOTTLENECKS = ((64, 3, 2), (96, 3, 2), (128, 3, 1))


def _width(channels, multiplier):
    return max(1, int(round(channels * multiplier)))


def build_fast_scnn(num_classes, input_shape=(None, None, 3), width_multiplier=1.0,
                    expansion=6, name="fast_scnn"):
    """Builds a Fast-SCNN-style network.

    Args:
        num_classes: Output classes.
        input_shape: (height, width, 3); None for dynamic sizes.
        width_multiplier: Scales every channel count (1.0 = the paper's widths,
            32-48-64 / 64-96-128).
        expansion: Expansion factor of the inverted residual bottlenecks.
        name: Model name.

    Returns:
        A `keras.Model` mapping raw 0..255 RGB images to logits at the image size.
    """
    if width_multiplier <= 0:
        raise ConfigError(f"width_multiplier must be > 0, got {width_multiplier}")
    w = lambda c: _width(c, width_multiplier)  # noqa: E731
    images = keras.Input(input_shape, name="images")
    x = normalization_layer()(images)
    # Learning to downsample: stride 8.
    x = ConvOp(w(32), ((3, 3),), strides=2, name="downsample_conv")(x)
    x = ConvOp(w(48), ((3, 3),), strides=2, separable=True, name="downsample_ds1")(x)
    high = ConvOp(w(64), ((3, 3),), strides=2, separable=True, name="downsample_ds2")(x)
    # Global feature extractor: stride 32.
    x = high
    for stage, (channels, blocks, stride) in enumerate(_BOTTLENECKS):
        for i in range(blocks):
            x = InvertedResidual(w(channels), expansion, stride if i == 0 else 1,
                                 name=f"bottleneck{stage}_{i}")(x)
    x = PyramidPooling(w(128), name="ppm")(x)
    # Feature fusion at stride 8.
    low = ResizeLike(name="fusion_upsample")(x, high)
    low = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="fusion_dw")(low)
    low = keras.layers.ReLU(name="fusion_dw_relu")(BatchNorm(name="fusion_dw_bn")(low))
    low = BatchNorm(name="fusion_low_bn")(
        layers.Conv2D(w(128), 1, use_bias=False, name="fusion_low")(low))
    high = BatchNorm(name="fusion_high_bn")(
        layers.Conv2D(w(128), 1, use_bias=False, name="fusion_high")(high))
    x = keras.layers.ReLU(name="fusion_relu")(layers.Add(name="fusion_add")([low, high]))
    # Classifier.
    x = ConvOp(w(128), ((3, 3),), separable=True, name="classifier_ds1")(x)
    x = ConvOp(w(128), ((3, 3),), separable=True, name="classifier_ds2")(x)
    logits = SegmentationHead(num_classes, name="head")(x, images)
    return keras.Model(images, logits, name=name)
