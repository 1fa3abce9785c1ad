"""Class probabilities from a trained model file: a `.keras` model or a SavedModel."""

import os

import numpy as np
import tensorflow as tf

from tf_nas_seg.errors import UserError
from tf_nas_seg.utils.saved_models import ServingModelError, load_serving


class PredictorError(UserError):
    """A model file cannot be used for prediction; the message says why and what to do."""


class Predictor:
    """Wraps a model so that `predictor(images)` returns class probabilities.

    Accepts a `.keras` file written by `bin/train` (or any Keras model mapping raw
    0..255 RGB images to logits) and a SavedModel directory whose `serving_default`
    signature takes one image input (uint8 or float, raw 0..255) and returns
    `probabilities` or `logits`, as `bin/export` writes it.

    Args:
        path: The model file or SavedModel directory (or its parent holding numbered
            versions, the TF Serving layout; the highest version is used).
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        if not os.path.exists(self.path):
            raise PredictorError(f"model {self.path} does not exist; pass the model.keras "
                                 "that bin/train wrote or a SavedModel directory")
        if os.path.isdir(self.path):
            self._load_saved_model(self.path)
        elif self.path.endswith(".keras"):
            self._load_keras()
        else:
            raise PredictorError(f"{self.path} is neither a .keras file nor a SavedModel "
                                 "directory")

    @classmethod
    def from_model(cls, model):
        """A predictor over an in-memory Keras model (e.g. during training)."""
        predictor = cls.__new__(cls)
        predictor.path, predictor.kind = None, "keras"
        predictor._wrap_keras(model)
        return predictor

    def _load_keras(self):
        import keras

        import tf_nas_seg.networks  # noqa: F401  (registers the custom layers)

        try:
            self.model = keras.saving.load_model(self.path, compile=False)
        except Exception as e:  # Keras raises several types for a bad archive
            raise PredictorError(f"cannot load {self.path} as a Keras model ({e})") from e
        self.kind = "keras"
        self._wrap_keras(self.model)

    def _wrap_keras(self, model):
        self.model = model
        self.num_classes = int(model.output_shape[-1])

        @tf.function(reduce_retracing=True)
        def probabilities(images):
            return tf.nn.softmax(tf.cast(model(images, training=False), tf.float32))

        self._fn = probabilities

    def _load_saved_model(self, path):
        try:
            served = load_serving(path)
        except ServingModelError as e:
            raise PredictorError(str(e)) from e
        if served.output_key == "class_map":
            raise PredictorError(f"{served.directory} returns class ids only (no "
                                 "probabilities or logits signature, e.g. a TF-TRT "
                                 "conversion); evaluate the SavedModel bin/export wrote, "
                                 "or its .keras model")
        self.kind = "saved_model"
        self._loaded = served.loaded
        self.num_classes = served.num_classes
        signature, input_name, key = served.signature, served.input_name, served.output_key
        dtype, from_logits = served.input_dtype, served.from_logits

        def probabilities(images):
            if dtype == tf.uint8:
                images = tf.cast(tf.clip_by_value(tf.round(images), 0, 255), tf.uint8)
            else:
                images = tf.cast(images, dtype)
            out = tf.cast(signature(**{input_name: images})[key], tf.float32)
            return tf.nn.softmax(out) if from_logits else out

        self._fn = probabilities

    def __call__(self, images):
        """[B, H, W, 3] raw 0..255 images -> [B, H, W, K] float32 probabilities."""
        return self._fn(tf.convert_to_tensor(images, tf.float32))

    def predict(self, images, flip=False, scales=(1.0,), size=None):
        """Probabilities at the images' size, optionally with test-time augmentation.

        Args:
            images: [B, H, W, 3] raw 0..255 images.
            flip: Also predict the mirrored images and average.
            scales: Input scale factors whose predictions are averaged (after resizing
                back to H x W); (1.0,) is plain inference.
            size: (height, width) to run the network at instead of H x W (then scaled
                by `scales`); predictions are resized back to H x W.

        Returns:
            [B, H, W, K] float32 probabilities.
        """
        images = tf.convert_to_tensor(images, tf.float32)
        height, width = int(images.shape[1]), int(images.shape[2])
        base = size or (height, width)
        total = None
        for scale in scales:
            target = (max(8, int(round(base[0] * scale))), max(8, int(round(base[1] * scale))))
            x = images if target == (height, width) else tf.image.resize(images, target)
            views = [(x, False)] + ([(tf.reverse(x, axis=[2]), True)] if flip else [])
            for view, flipped in views:
                p = self(view)
                if flipped:
                    p = tf.reverse(p, axis=[2])
                if target != (height, width):
                    p = tf.image.resize(p, (height, width))
                total = p if total is None else total + p
        return total / float(len(scales) * (2 if flip else 1))


def load_predictor(path):
    """A `Predictor` for a `.keras` model or a SavedModel."""
    return Predictor(path)


def argmax(probabilities):
    """Class ids [B, H, W] int32 from probabilities."""
    return np.asarray(tf.argmax(probabilities, axis=-1, output_type=tf.int32))
