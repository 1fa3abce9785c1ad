"""The TF Serving SavedModel: uint8 images in; a class map (serving_default), or a class
map and probabilities (the `probabilities` signature) out."""

import os

import tensorflow as tf

from tf_nas_seg.export.warmup_requests import WARMUP_FILE, write_warmup_requests

SIGNATURE = "serving_default"
# The second signature: what bin/evaluate and clients that need scores call.
PROBABILITIES_SIGNATURE = "probabilities"
INPUT_NAME = "images"


def serving_function(model, probabilities=False):
    """images uint8 [B, H, W, 3] -> {class_map int32 [B, H, W]} (and, with
    `probabilities`, probabilities float32 [B, H, W, K]).

    `serving_default`, what TF Serving answers when a request names no signature, returns
    only the class map: the softmax over every pixel and the copy of a float32
    [B, H, W, K] tensor back to the client cost 5.8 ms of 40 ms per 360x480 frame on a
    2-core CPU (benchmarks/README.md), for scores most clients never read. The
    `probabilities` signature returns both, for evaluation and for clients that
    threshold or fuse scores.

    The network normalises raw 0..255 RGB itself (`networks.stem.Standardize`), so the
    signature only casts; resizing inside the network follows the input's runtime size
    (`ops.ResizeLike`), so batch, height and width are all dynamic.

    NOTE: the signature declares its input with an unknown shape and checks rank and
    channels itself, in the graph. Declared as [None, None, None, 3], a loaded
    signature does not check the shape of what it is fed, and the graph's own check
    is folded away against the declared shape: a rank-3 tensor (an image without its
    batch axis) then aborted the whole process in a convolution kernel (TensorFlow
    2.21). Now it is an InvalidArgumentError that says what was expected and what came.
    """

    def serve(images):
        shape = tf.shape(images)
        valid = tf.logical_and(tf.equal(tf.size(shape), 4),
                               tf.equal(shape[tf.size(shape) - 1], 3))
        check = tf.debugging.Assert(valid, [
            "images must be a uint8 batch [batch, height, width, 3] of RGB images; "
            "got shape", shape], summarize=8)
        with tf.control_dependencies([check]):
            images = tf.ensure_shape(tf.identity(images), (None, None, None, 3))
        logits = tf.cast(model(tf.cast(images, tf.float32), training=False), tf.float32)
        outputs = {"class_map": tf.argmax(logits, axis=-1, output_type=tf.int32)}
        if probabilities:
            outputs["probabilities"] = tf.nn.softmax(logits, axis=-1)
        return outputs

    return serve


def export_saved_model(model, directory, warmup_images=(), model_name="model"):
    """Writes the serving SavedModel of `model` to `directory` (which must not exist).

    NOTE: `tf.saved_model.save(model)` walks every layer attribute, and our cells keep
    their edge layers in dicts keyed by (node, source) tuples, which TensorFlow's object
    graph refuses. `keras.export.ExportArchive` without `track(model)` saves only the
    variables the endpoint captures, which is all TF Serving needs, so the layers stay as
    they are (and .keras files written before keep loading).

    Args:
        model: A Keras model mapping raw 0..255 RGB to logits.
        directory: The version directory to write (saved_model.pb, variables/, ...).
        warmup_images: uint8 [B, H, W, 3] batches replayed by TF Serving at load time,
            written to assets.extra/tf_serving_warmup_requests.
        model_name: The name TF Serving serves the model under (in the warm-up records).
    """
    import keras

    archive = keras.export.ExportArchive()
    spec = [tf.TensorSpec(None, tf.uint8, name=INPUT_NAME)]
    archive.add_endpoint(SIGNATURE, serving_function(model), input_signature=spec)
    archive.add_endpoint(PROBABILITIES_SIGNATURE, serving_function(model, True),
                         input_signature=spec)
    archive.write_out(os.fspath(directory), verbose=False)
    if len(warmup_images):
        extra = os.path.join(directory, "assets.extra")
        os.makedirs(extra, exist_ok=True)
        write_warmup_requests(os.path.join(extra, WARMUP_FILE), warmup_images, model_name,
                              SIGNATURE, INPUT_NAME)
