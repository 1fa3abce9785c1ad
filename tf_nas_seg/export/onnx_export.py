"""ONNX conversion through tf2onnx (the optional `onnx` extra)."""

import os

import tensorflow as tf

from tf_nas_seg.export.artifact_runner import ONNX_MISSING

ONNX_OPSET = 17


class OnnxUnavailableError(ImportError):
    """tf2onnx is not installed; the message names the extra to install."""


def onnx_available():
    """True when tf2onnx and onnxruntime import."""
    try:
        import onnxruntime  # noqa: F401
        import tf2onnx  # noqa: F401
    except ImportError:
        return False
    return True


def convert_onnx(model, path, opset=ONNX_OPSET):
    """Writes `model` as ONNX: `images` float32 raw 0..255 RGB [B, H, W, 3] (all dynamic)
    -> `logits` float32 [B, H, W, K].

    Raises:
        OnnxUnavailableError: tf2onnx is missing.
    """
    try:
        import tf2onnx
    except ImportError as e:
        raise OnnxUnavailableError(ONNX_MISSING) from e

    def logits(images):
        return {"logits": model(images, training=False)}

    tf2onnx.convert.from_function(
        tf.function(logits),
        input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32, name="images")],
        opset=opset, output_path=os.fspath(path))
