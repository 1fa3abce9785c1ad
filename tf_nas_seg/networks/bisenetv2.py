"""A BiSeNet V2-style hand-designed peer, built from the same op library as searched nets.

BiSeNet V2 (Yu et al., "BiSeNet V2: Bilateral Network with Guided Aggregation for
Real-time Semantic Segmentation", IJCV 2021) runs two branches side by side: a detail
branch of wide, shallow 3x3 convolutions (64-64-128 channels, stride 8) and a semantic
branch of narrow, deep gather-and-expand layers (stem block to stride 4, 16-32-64-128
channels, stride 32, ending in a context embedding block), fused by a bilateral guided
aggregation layer whose sigmoid gates let each branch weight the other. It is trained
from scratch in the paper, as everything here is. It exists next to the Fast-SCNN-style
peer so that searched networks meet a second hand-designed real-time network trained
by the same pipeline, on equal terms. Table 1 of the paper is followed stage by stage:

    detail   S1: conv 64 s2, conv 64 | S2: conv 64 s2, 2x conv 64 |
             S3: conv 128 s2, 2x conv 128                              (stride 8)
    semantic S1-S2: stem 16 (stride 4) | S3: GE 32 s2, GE 32 |
             S4: GE 64 s2, GE 64 | S5: GE 128 s2, 3x GE 128, CE 128    (stride 32)
    then BGA 128, and the head: 3x3 conv-BN-ReLU, 1x1 classifier, upsampling.

Differences from the paper, all deliberate:
- no booster (auxiliary) heads: the paper uses them only for training and drops them
  at inference; they are skipped entirely, so training uses the main head's loss only;
- a ReLU after the last depthwise conv of every gather-and-expand layer, and
  conv-BN-ReLU (instead of a plain conv) for the last 3x3 conv of the context
  embedding block and of the aggregation layer: none is drawn in the paper's figures,
  all are in the public reimplementations (CoinCheung/BiSeNet, mmsegmentation);
- the aggregation layer upsamples bilinearly to the detail map's exact size instead
  of by a fixed factor 4, so any input size works, and its 'same' average pooling
  leaves the padding out of the mean (TensorFlow's convention);
- the head's 3x3 conv has 1024 channels, a width the paper leaves unstated (the public
  reimplementations use 1024, and with it the count matches the published 3.4 M
  parameters), and no dropout.
"""

import keras
from keras import layers

from tf_nas_seg.networks.stem import SegmentationHead, normalization_layer
from tf_nas_seg.ops.context_embedding import ContextEmbedding
from tf_nas_seg.ops.conv_op import ConvOp
from tf_nas_seg.ops.gather_expand import GatherExpand
from tf_nas_seg.ops.guided_aggregation import GuidedAggregation
from tf_nas_seg.errors import ConfigError

# (output channels, 3x3 conv-BN-ReLU units, stride of the first) of the detail branch.
_DETAIL_STAGES = ((64, 2, 2), (64, 3, 2), (128, 3, 2))
# (output channels, gather-and-expand layers) of semantic stages 3-5; each starts at
# stride 2.
_SEMANTIC_STAGES = ((32, 2), (64, 2), (128, 4))
_STEM_CHANNELS = 16
_HEAD_CHANNELS = 1024


def _width(channels, multiplier):
    return max(1, int(round(channels * multiplier)))


def build_bisenetv2(num_classes, input_shape=(None, None, 3), width_multiplier=1.0,
                    expansion=6, name="bisenetv2"):
    """Builds a BiSeNet V2-style network.

    Args:
        num_classes: Output classes.
        input_shape: (height, width, 3); None for dynamic sizes.
        width_multiplier: Scales every channel count (1.0 = the paper's widths,
            64-64-128 detail, 16-32-64-128 semantic, 1024 in the head).
        expansion: Expansion factor of the gather-and-expand layers (the paper: 6).
        name: Model name.

    Returns:
        A `keras.Model` mapping raw 0..255 RGB images to logits at the image size.
    """
    if width_multiplier <= 0:
        raise ConfigError(f"width_multiplier must be > 0, got {width_multiplier}")
    w = lambda c: _width(c, width_multiplier)  # noqa: E731
    images = keras.Input(input_shape, name="images")
    x = normalization_layer()(images)
    # Detail branch: stride 8.
    detail = x
    for stage, (channels, units, stride) in enumerate(_DETAIL_STAGES, start=1):
        detail = ConvOp(w(channels), ((3, 3),) * units, strides=stride,
                        name=f"detail_s{stage}")(detail)
    # Semantic branch, stem block: stride 4 by a conv and a max pool side by side.
    stem = ConvOp(w(_STEM_CHANNELS), ((3, 3),), strides=2, name="stem_conv")(x)
    left = ConvOp(w(_STEM_CHANNELS // 2), ((1, 1),), name="stem_reduce")(stem)
    left = ConvOp(w(_STEM_CHANNELS), ((3, 3),), strides=2, name="stem_down")(left)
    right = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(stem)
    semantic = layers.Concatenate(name="stem_concat")([left, right])
    semantic = ConvOp(w(_STEM_CHANNELS), ((3, 3),), name="stem_fuse")(semantic)
    # Gather-and-expand stages 3-5 (stride 32) and the context embedding.
    for stage, (channels, blocks) in enumerate(_SEMANTIC_STAGES, start=3):
        for i in range(blocks):
            semantic = GatherExpand(w(channels), expansion, 2 if i == 0 else 1,
                                    name=f"ge{stage}_{i}")(semantic)
    semantic = ContextEmbedding(w(_SEMANTIC_STAGES[-1][0]), name="context")(semantic)
    # Bilateral guided aggregation at stride 8, then the head.
    x = GuidedAggregation(w(_DETAIL_STAGES[-1][0]), name="aggregation")(detail, semantic)
    x = ConvOp(w(_HEAD_CHANNELS), ((3, 3),), name="head_conv")(x)
    logits = SegmentationHead(num_classes, name="head")(x, images)
    return keras.Model(images, logits, name=name)
