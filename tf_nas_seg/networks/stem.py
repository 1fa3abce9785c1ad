"""The convolutional stem and the segmentation head shared by all CAS networks."""

import keras
from keras import layers

from tf_nas_seg.ops.conv_op import ConvOp
from tf_nas_seg.ops.macs import conv_macs, out_size
from tf_nas_seg.ops.resize_like import ResizeLike

# ImageNet statistics in 0..255 units: images enter every network as raw RGB values so
# that exported models take uint8 pixels and normalise inside the graph.
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
# CAS's stem: three 3x3 convs with these strides (output stride 4).
STEM_STRIDES = (2, 1, 2)


@keras.saving.register_keras_serializable(package="tf_nas_seg")
class Standardize(keras.layers.Layer):
    """(x - mean) / std per channel, for raw 0..255 RGB inputs of any dtype.

    NOTE: `keras.layers.Normalization` creates its constants in `build`, which fails when
    a subclassed model is first called inside a `tf.function` (the constants belong to a
    scratch graph); constants made in `call` have no such problem.

    Args:
        mean: Per-channel mean.
        std: Per-channel standard deviation.
    """

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD, **kwargs):
        super().__init__(**kwargs)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)

    def call(self, x):
        x = keras.ops.cast(x, self.compute_dtype)
        mean = keras.ops.convert_to_tensor(self.mean, dtype=self.compute_dtype)
        std = keras.ops.convert_to_tensor(self.std, dtype=self.compute_dtype)
        return (x - mean) / std

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"mean": list(self.mean), "std": list(self.std)})
        return config


def normalization_layer(name="normalize"):
    """Per-channel standardisation of raw 0..255 RGB inputs (ImageNet statistics)."""
    return Standardize(name=name)


@keras.saving.register_keras_serializable(package="tf_nas_seg")
class Stem(keras.layers.Layer):
    """Three 3x3 conv-BN-ReLU units with strides (2, 1, 2): output stride 4 (CAS).

    Args:
        filters: Output channels of each conv.
        strides: Stride of each conv.
    """

    def __init__(self, filters, strides=STEM_STRIDES, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.strides = tuple(int(s) for s in strides)
        self.convs = [ConvOp(self.filters, ((3, 3),), strides=s, name=f"conv{i}")
                      for i, s in enumerate(self.strides)]

    def build(self, input_shape):
        # Children are built here (not lazily on first call) so that a saved model
        # finds their variables when it loads.
        for conv in self.convs:
            conv.build(input_shape)
            input_shape = conv.compute_output_shape(input_shape)

    def call(self, x, training=None):
        for conv in self.convs:
            x = conv(x, training=training)
        return x

    def compute_output_shape(self, input_shape):
        for conv in self.convs:
            input_shape = conv.compute_output_shape(input_shape)
        return input_shape

    def count_macs(self, input_shape):
        """MACs of the three convolutions for a (h, w, 3) input."""
        total = 0
        height, width, channels = input_shape
        for conv in self.convs:
            total += conv.count_macs((height, width, channels))
            height, width = out_size(height, conv.strides), out_size(width, conv.strides)
            channels = self.filters
        return total

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "strides": list(self.strides)})
        return config


@keras.saving.register_keras_serializable(package="tf_nas_seg")
class SegmentationHead(keras.layers.Layer):
    """1x1 classifier, then bilinear upsampling of the logits to the image size.

    Args:
        num_classes: Output classes.
    """

    def __init__(self, num_classes, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.classifier = layers.Conv2D(self.num_classes, 1, name="classifier")
        self.upsample = ResizeLike(name="upsample")

    def build(self, features_shape, images_shape):
        del images_shape
        self.classifier.build(features_shape)

    def call(self, features, images):
        return self.upsample(self.classifier(features), images)

    def compute_output_shape(self, features_shape, images_shape):
        return (images_shape[0], images_shape[1], images_shape[2], self.num_classes)

    def count_macs(self, features_shape):
        """MACs of the 1x1 classifier for (h, w, c) features."""
        height, width, channels = features_shape
        return conv_macs(height, width, channels, self.num_classes, (1, 1))

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes})
        return config
