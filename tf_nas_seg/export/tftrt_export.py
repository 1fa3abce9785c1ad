"""TF-TRT conversion (TensorRT inside a SavedModel), where TensorFlow is built with it."""

import os

import numpy as np
import tensorflow as tf
from tf_nas_seg.errors import ConfigError

TFTRT_PRECISIONS = ("FP32", "FP16", "INT8")

TFTRT_MISSING = (
    "TF-TRT is not available: this TensorFlow ({version}) is not built with TensorRT (the "
    "standard PyPI wheels, tensorflow-cpu and tensorflow[and-cuda], are not). To export "
    "TF-TRT, run bin/export on a Linux machine with an NVIDIA GPU in a TensorFlow build "
    "linked against TensorRT (NVIDIA's TensorFlow container nvcr.io/nvidia/tensorflow, or "
    "TensorFlow built from source with `bazel build --config=cuda --config=tensorrt`). "
    "The other formats were exported without it.")


def tensorrt_available():
    """(True, "") when TensorFlow is linked against TensorRT, else (False, message)."""
    try:
        from tensorflow.compiler.tf2tensorrt._pywrap_py_utils import is_tensorrt_enabled
        from tensorflow.python.compiler.tensorrt import trt_convert  # noqa: F401
        enabled = bool(is_tensorrt_enabled())
    except ImportError:
        enabled = False
    if enabled and not tf.config.list_physical_devices("GPU"):
        return False, ("TF-TRT is built in, but TensorFlow sees no GPU: TensorRT engines are "
                       "built on and for an NVIDIA GPU. The other formats were exported "
                       "without it.")
    return (True, "") if enabled else (False, TFTRT_MISSING.format(version=tf.__version__))


def convert_tftrt(saved_model_dir, output_dir, precision, calibration_images=None):
    """Converts the serving SavedModel to a TF-TRT SavedModel at `precision`.

    Args:
        saved_model_dir: The SavedModel written by `export_saved_model`.
        output_dir: Where the converted SavedModel goes.
        precision: "FP32", "FP16" or "INT8".
        calibration_images: uint8 [N, H, W, 3] training images (INT8 calibration; also
            used to build the engines ahead of time for their shape).
    """
    from tensorflow.python.compiler.tensorrt import trt_convert as trt

    if precision not in TFTRT_PRECISIONS:
        raise ConfigError(f"TF-TRT precision {precision!r} is not one of {TFTRT_PRECISIONS}")
    converter = trt.TrtGraphConverterV2(
        input_saved_model_dir=os.fspath(saved_model_dir),
        precision_mode=getattr(trt.TrtPrecisionMode, precision),
        use_calibration=precision == "INT8")
    images = np.asarray(calibration_images if calibration_images is not None else [],
                        np.uint8)

    def inputs():
        for image in images:
            yield (tf.constant(image[None]),)

    if precision == "INT8":
        converter.convert(calibration_input_fn=inputs)
    else:
        converter.convert()
    if len(images):
        converter.build(input_fn=lambda: iter([next(inputs())]))
    converter.save(os.fspath(output_dir))
