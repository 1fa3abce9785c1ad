"""Bilinear resizing of a feature map to the spatial size of another one."""

import keras
from keras import ops


def resize_to(x, height, width, interpolation="bilinear"):
    """Resizes an NHWC tensor to (height, width), static or dynamic.

    NOTE: `keras.ops.image.resize` wants a size known when the graph is traced; given a
    symbolic size it breaks SavedModel export with dynamic height and width. When either
    target dimension is a tensor (dynamic shapes under the TensorFlow backend) this falls
    back to `tf.image.resize`, which takes a size tensor, with the same half-pixel
    convention (`align_corners=False`) as `keras.ops.image.resize`.
    """
    if isinstance(height, int) and isinstance(width, int):
        return ops.image.resize(x, (height, width), interpolation=interpolation)
    import tensorflow as tf  # the dynamic path exists only on the TensorFlow backend

    return tf.image.resize(x, tf.stack([height, width]), method=interpolation)


@keras.saving.register_keras_serializable(package="tf_nas_seg")
class ResizeLike(keras.layers.Layer):
    """Resizes its first input to the spatial size of its second input.

    Args:
        interpolation: "bilinear" (features, logits) or "nearest".
    """

    def __init__(self, interpolation="bilinear", **kwargs):
        super().__init__(**kwargs)
        self.interpolation = interpolation

    def call(self, x, reference):
        shape = ops.shape(reference)
        src = ops.shape(x)
        if (isinstance(shape[1], int) and isinstance(src[1], int)
                and shape[1] == src[1] and shape[2] == src[2]):
            return x
        return resize_to(x, shape[1], shape[2], self.interpolation)

    def compute_output_shape(self, x_shape, reference_shape):
        return (x_shape[0], reference_shape[1], reference_shape[2], x_shape[3])

    def get_config(self):
        config = super().get_config()
        config.update({"interpolation": self.interpolation})
        return config
