"""TFLite conversion: fp32, fp16 weights, and full-integer int8 with representative data."""

import warnings

import numpy as np
import tensorflow as tf
from tf_nas_seg.errors import ConfigError

TFLITE_MODES = ("fp32", "fp16", "int8")


def convert_tflite(model, mode, size, representative_images=None):
    """Converts `model` (raw 0..255 RGB -> logits) at a fixed batch-1 input size.

    TFLite targets fixed-size deployment: the graph is traced at (1, height, width, 3),
    which also lets the converter fold every shape computation. fp32 and fp16 take float
    raw RGB and return float logits; int8 is integer-only (every op int8, calibrated on
    `representative_images`) with a uint8 image input (scale 1, exact for raw pixels)
    and int8 logits (dequantise with the output's scale and zero point).

    Args:
        model: A Keras model.
        mode: One of `TFLITE_MODES`.
        size: (height, width).
        representative_images: uint8 [N, H, W, 3] training images, needed for int8.

    Returns:
        The .tflite flatbuffer (bytes).
    """
    if mode not in TFLITE_MODES:
        raise ConfigError(f"TFLite mode {mode!r} is not one of {TFLITE_MODES}")
    height, width = size

    @tf.function(input_signature=[tf.TensorSpec((1, height, width, 3), tf.float32,
                                                name="images")])
    def logits(images):
        return {"logits": model(images, training=False)}

    # NOTE: frozen here rather than by the converter: with a representative dataset the
    # converter keeps some variable reads (Fast-SCNN's), and int8 calibration then fails
    # with "READ_VARIABLE ... variable != nullptr".
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)

    frozen = convert_variables_to_constants_v2(logits.get_concrete_function())
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    if mode == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "int8":
        if representative_images is None or not len(representative_images):
            raise ConfigError("int8 TFLite needs representative images from the training set")
        images = np.asarray(representative_images, np.float32)

        def representative():
            for image in images:
                yield [image[None]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.int8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "statistics for quantized inputs ..." is expected
        return converter.convert()
