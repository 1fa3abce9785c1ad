"""The one SavedModel loader: TF Serving's layout and the signatures bin/export writes.

`bin/evaluate` (the predictor) and `bin/benchmark` / the export check (the artifact
runner) both load exported networks through `load_serving`, so both accept and refuse
the same directories with the same messages.

Exports write `serving_default` (the class map: what TF Serving runs and what the
benchmark times) and `probabilities` (class map and probabilities: what evaluation and
the export checks read). Exports written before the split have only `serving_default`,
with probabilities in it; both layouts load.
"""

import dataclasses
import os

from tf_nas_seg.errors import UserError


class ServingModelError(UserError):
    """A SavedModel cannot be served; the message says why and what to pass instead."""


def latest_version(directory):
    """`directory` itself, or its highest numbered version (TF Serving layout)."""
    if os.path.exists(os.path.join(directory, "saved_model.pb")):
        return directory
    versions = [d for d in os.listdir(directory)
                if d.isdigit() and os.path.isdir(os.path.join(directory, d))]
    if not versions:
        return directory
    return os.path.join(directory, max(versions, key=int))


@dataclasses.dataclass
class ServingModel:
    """A loaded SavedModel: the signature that gives scores, and `serving_default`.

    Attributes:
        directory: The version directory loaded.
        loaded: The `tf.saved_model.load` object (keep it alive with the signature).
        signature: The concrete function that returns scores: `probabilities` where the
            export has it, else `serving_default` (older exports).
        default: The `serving_default` concrete function (what TF Serving runs).
        input_name: Its one input's name.
        input_dtype: That input's `tf.DType` (uint8 or a float type).
        output_key: "probabilities", "logits", or "class_map" (a SavedModel that gives
            class ids only, such as a TF-TRT conversion of serving_default).
        num_classes: Channels of that output (None for a class map).
    """

    directory: str
    loaded: object
    signature: object
    default: object
    input_name: str
    input_dtype: object
    output_key: str
    num_classes: int

    @property
    def from_logits(self):
        return self.output_key == "logits"


def load_serving(path, device=None):
    """Loads `path` (a version directory or its parent) and checks its signatures.

    Args:
        path: SavedModel directory, or the TF Serving model directory holding numbered
            versions (the highest is loaded).
        device: TensorFlow device string to load onto (None: TensorFlow's placement).

    Raises:
        ServingModelError: no saved_model.pb, no `serving_default`, not exactly one input,
            or no signature with a `probabilities` or `logits` output.
    """
    import tensorflow as tf

    directory = latest_version(os.fspath(path))
    if not os.path.exists(os.path.join(directory, "saved_model.pb")):
        raise ServingModelError(f"{directory} holds no saved_model.pb; pass a SavedModel "
                                "directory (saved_models/NAME/VERSION or saved_models/NAME)")
    if device is None:
        loaded = tf.saved_model.load(directory)
    else:
        with tf.device(device):
            loaded = tf.saved_model.load(directory)
    if "serving_default" not in loaded.signatures:
        raise ServingModelError(f"SavedModel {directory} has no serving_default signature "
                                f"(it has {list(loaded.signatures)}); export it with "
                                "bin/export")
    name = ("probabilities" if "probabilities" in loaded.signatures
            else "serving_default")
    signature = loaded.signatures[name]
    inputs = signature.structured_input_signature[1]
    if len(inputs) != 1:
        raise ServingModelError(f"{name} of {directory} takes {sorted(inputs)}; "
                                "expected one image input")
    (input_name, spec), = inputs.items()
    outputs = signature.structured_outputs
    # A TF-TRT conversion holds serving_default only: a class map, no scores.
    key = next((k for k in ("probabilities", "logits", "class_map") if k in outputs), None)
    if key is None:
        raise ServingModelError(f"{name} of {directory} returns {sorted(outputs)};"
                                " expected 'probabilities', 'logits' or 'class_map'")
    classes = None if key == "class_map" else int(outputs[key].shape[-1])
    return ServingModel(directory=directory, loaded=loaded, signature=signature,
                        default=loaded.signatures["serving_default"],
                        input_name=input_name, input_dtype=spec.dtype, output_key=key,
                        num_classes=classes)
