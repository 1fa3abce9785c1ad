"""One way to run every model format on batch-1 images: for export checks and benchmarks.

Formats: a genotype JSON (built with untrained weights: for timing only), a `.keras`
model, a SavedModel (its `serving_default` signature), a `.tflite` file (fp32, fp16 or
int8) and an `.onnx` file. Each runner takes raw uint8 RGB [1, H, W, 3] and returns
class scores [1, H, W, K] as NumPy (logits or probabilities; both give the same argmax),
so timings include the copy of the result back to the host.
"""

import json
import os
import warnings

import numpy as np
import tensorflow as tf

from tf_nas_seg.errors import UserError
from tf_nas_seg.utils.saved_models import ServingModelError, load_serving

FORMATS = ("genotype", "keras", "saved_model", "tflite", "onnx")

ONNX_MISSING = ("ONNX needs the `onnx` extra: pip install -e .[onnx] (tf2onnx, onnx and "
                "onnxruntime, pinned in setup.cfg)")


class ArtifactError(UserError):
    """A model file cannot be run; the message says why and what to do."""


def detect_format(path):
    """The format of `path` from its name (a SavedModel is a directory)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return "saved_model"
    for suffix, kind in ((".keras", "keras"), (".tflite", "tflite"), (".onnx", "onnx"),
                         (".json", "genotype")):
        if path.endswith(suffix):
            return kind
    raise ArtifactError(f"{path}: unknown model format; pass a genotype .json, a .keras "
                        "file, a SavedModel directory, a .tflite or an .onnx file")


def load_keras_model(path):
    """A `.keras` model written by bin/train (custom layers registered)."""
    import keras

    import tf_nas_seg.networks  # noqa: F401  (registers the custom layers)

    try:
        return keras.saving.load_model(os.fspath(path), compile=False)
    except Exception as e:  # Keras raises several types for a bad archive
        raise ArtifactError(f"cannot load {path} as a Keras model ({e})") from e


class ArtifactRunner:
    """Runs one model file on batch-1 uint8 images.

    Args:
        path: The model file (see `FORMATS`); "peer:NAME" builds a hand-designed network.
        num_classes: Output classes of a network built from a genotype or peer.
        width_multiplier: Channel scaling of a network built from a genotype or peer.
        device: TensorFlow device string for TensorFlow formats ("/CPU:0", "/GPU:0");
            ONNX runs on CUDA for a GPU device when onnxruntime has it, TFLite on the CPU.
        threads: CPU threads of TFLite and ONNX Runtime (0: their default).
    """

    def __init__(self, path, num_classes=19, width_multiplier=1.0, device="/CPU:0",
                 threads=0):
        self.path = os.fspath(path)
        self.device = device
        self.threads = int(threads)
        self.keras_model = None
        if self.path.startswith("peer:"):
            self.format = "genotype"
        else:
            if not os.path.exists(self.path):
                raise ArtifactError(f"model {self.path} does not exist")
            self.format = detect_format(self.path)
        self.size = None
        self._fn = None
        getattr(self, f"_load_{self.format}")(num_classes, width_multiplier)

    @property
    def name(self):
        return os.path.basename(self.path.rstrip("/")) or self.path

    # Loading ------------------------------------------------------------------------
    def _load_genotype(self, num_classes, width_multiplier):
        from tf_nas_seg.networks import build_network

        with tf.device(self.device):
            if self.path.startswith("peer:"):
                self.keras_model = build_network(None, num_classes, peer=self.path[5:],
                                                 width_multiplier=width_multiplier)
            else:
                self.keras_model = build_network(self.path, num_classes,
                                                 width_multiplier=width_multiplier)

    def _load_keras(self, num_classes, width_multiplier):
        del num_classes, width_multiplier
        with tf.device(self.device):
            self.keras_model = load_keras_model(self.path)

    def _load_saved_model(self, num_classes, width_multiplier):
        del num_classes, width_multiplier
        try:
            served = load_serving(self.path, device=self.device)
        except ServingModelError as e:
            raise ArtifactError(str(e)) from e
        self._loaded, self._signature = served.loaded, served.signature
        self._default = served.default
        self._input_name, self._input_dtype = served.input_name, served.input_dtype
        self._output = served.output_key

    def _load_tflite(self, num_classes, width_multiplier):
        del num_classes, width_multiplier
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
            self._interpreter = tf.lite.Interpreter(
                model_path=self.path, num_threads=self.threads or None)
        self._interpreter.allocate_tensors()

    def _load_onnx(self, num_classes, width_multiplier):
        del num_classes, width_multiplier
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise ArtifactError(f"cannot run {self.path}: {ONNX_MISSING}") from e
        options = ort.SessionOptions()
        if self.threads:
            options.intra_op_num_threads = self.threads
        providers = ["CPUExecutionProvider"]
        if "GPU" in self.device.upper():
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ArtifactError("--device asks for a GPU, and this onnxruntime has no "
                                    "CUDA provider: pip install onnxruntime-gpu")
            providers.insert(0, "CUDAExecutionProvider")
        self._session = ort.InferenceSession(self.path, options, providers=providers)
        self._onnx_input = self._session.get_inputs()[0]

    # Running ------------------------------------------------------------------------
    def prepare(self, height, width):
        """Fixes the input size (traces, resizes or allocates) before timing."""
        self.size = (int(height), int(width))
        if self.keras_model is not None:
            model = self.keras_model

            @tf.function(input_signature=[tf.TensorSpec((1, height, width, 3), tf.float32)])
            def logits(images):
                return model(images, training=False)

            with tf.device(self.device):
                self._fn = logits.get_concrete_function()
        elif self.format == "tflite":
            detail = self._interpreter.get_input_details()[0]
            if tuple(detail["shape"][1:3]) != self.size:
                try:
                    self._interpreter.resize_tensor_input(detail["index"],
                                                          (1, height, width, 3))
                    self._interpreter.allocate_tensors()
                except (RuntimeError, ValueError) as e:
                    raise ArtifactError(
                        f"{self.path} was converted for {tuple(detail['shape'][1:3])} inputs "
                        f"and cannot run at {height}x{width} ({e}); export it at that size "
                        "(bin/export --tflite_size)") from e

    def to_input(self, images):
        """The input this runner feeds, made once outside the timed loop."""
        images = np.asarray(images, np.uint8)
        if self.keras_model is not None:
            with tf.device(self.device):
                return tf.constant(images.astype(np.float32))
        if self.format == "saved_model":
            with tf.device(self.device):
                if self._input_dtype == tf.uint8:
                    return tf.constant(images)
                return tf.constant(images.astype(self._input_dtype.as_numpy_dtype))
        if self.format == "tflite":
            dtype = self._interpreter.get_input_details()[0]["dtype"]
            return images.astype(dtype)
        dtype = np.uint8 if self._onnx_input.type == "tensor(uint8)" else np.float32
        return images.astype(dtype)

    def run(self, prepared):
        """What a benchmark times: one call on an input made by `to_input`, its outputs
        copied back to the host. Scores [1, H, W, K] (NumPy), except for a SavedModel:
        its `serving_default` (what TF Serving runs), whose outputs come back as a dict
        of NumPy arrays (the class map; also probabilities in exports made before
        serving_default dropped them)."""
        if self.keras_model is not None:
            with tf.device(self.device):
                return self._fn(prepared).numpy()
        if self.format == "saved_model":
            with tf.device(self.device):
                outputs = self._default(**{self._input_name: prepared})
                return {k: v.numpy() for k, v in outputs.items()}
        if self.format == "tflite":
            interpreter = self._interpreter
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"], prepared)
            interpreter.invoke()
            detail = interpreter.get_output_details()[0]
            out = interpreter.get_tensor(detail["index"])
            scale, zero = detail["quantization"]
            return (out.astype(np.float32) - zero) * scale if scale else out
        return self._session.run(None, {self._onnx_input.name: prepared})[0]

    def scores(self, prepared):
        """Scores [1, H, W, K] (NumPy) for an input made by `to_input`: logits or
        probabilities (a SavedModel's `probabilities` signature)."""
        if self.format == "saved_model":
            with tf.device(self.device):
                return self._signature(**{self._input_name: prepared})[self._output].numpy()
        return self.run(prepared)

    def __call__(self, images):
        """Scores for uint8 images [1, H, W, 3] (prepares the size if it changed)."""
        images = np.asarray(images)
        if self.size != tuple(images.shape[1:3]) or (self._fn is None and
                                                     self.keras_model is not None):
            self.prepare(*images.shape[1:3])
        return self.scores(self.to_input(images))

    # Facts ----------------------------------------------------------------------------
    def model_card(self):
        """The model_card.json beside (or inside) the file, or None."""
        directory = self.path if os.path.isdir(self.path) else os.path.dirname(self.path)
        for candidate in (directory, os.path.dirname(directory)):
            card = os.path.join(candidate, "model_card.json")
            if os.path.exists(card):
                with open(card, encoding="utf-8") as f:
                    return json.load(f)
        return None

    def params(self):
        """Trainable parameters (from the model, else from its model card), or None."""
        if self.keras_model is not None:
            from tf_nas_seg.networks import count_trainable_params

            return count_trainable_params(self.keras_model)
        card = self.model_card()
        return card.get("params") if card else None

    def macs(self, height, width):
        """(MACs of one batch-1 pass, how they were obtained) or (None, reason)."""
        from tf_nas_seg.networks.model_macs import count_model_macs

        if self.keras_model is not None:
            return count_model_macs(self.keras_model, height, width), "counted"
        card = self.model_card() or {}
        source = card.get("source_model")
        if source and os.path.exists(source):
            return count_model_macs(load_keras_model(source), height, width), (
                f"counted on {source}")
        ref = card.get("macs")
        if ref:
            h0, w0 = ref["size"]
            return int(round(ref["value"] * height * width / (h0 * w0))), (
                f"scaled by pixel count from the model card's {h0}x{w0} count")
        return None, "unknown (no Keras model or model card)"
