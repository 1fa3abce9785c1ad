"""The one SavedModel loader: TF Serving's layout and the `serving_default` contract.

`bin/evaluate` (the predictor) and `bin/benchmark` / the export check (the artifact
runner) both load exported networks through `load_serving`, so both accept and refuse
the same directories with the same messages.
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
    """A loaded SavedModel and what its `serving_default` signature takes and returns.

    Attributes:
        directory: The version directory loaded.
        loaded: The `tf.saved_model.load` object (keep it alive with the signature).
        signature: The `serving_default` concrete function.
        input_name: Its one input's name.
        input_dtype: That input's `tf.DType` (uint8 or a float type).
        output_key: "probabilities" or "logits".
        num_classes: Channels of that output.
    """

    directory: str
    loaded: object
    signature: object
    input_name: str
    input_dtype: object
    output_key: str
    num_classes: int

    @property
    def from_logits(self):
        return self.output_key == "logits"


def load_serving(path, device=None):
    """Loads `path` (a version directory or its parent) and checks `serving_default`.

    Args:
        path: SavedModel directory, or the TF Serving model directory holding numbered
            versions (the highest is loaded).
        device: TensorFlow device string to load onto (None: TensorFlow's placement).

    Raises:
        ServingModelError: no saved_model.pb, no `serving_default`, not exactly one input,
            or neither a `probabilities` nor a `logits` output.
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
    signature = loaded.signatures["serving_default"]
    inputs = signature.structured_input_signature[1]
    if len(inputs) != 1:
        raise ServingModelError(f"serving_default of {directory} takes {sorted(inputs)}; "
                                "expected one image input")
    (input_name, spec), = inputs.items()
    outputs = signature.structured_outputs
    key = next((k for k in ("probabilities", "logits") if k in outputs), None)
    if key is None:
        raise ServingModelError(f"serving_default of {directory} returns {sorted(outputs)};"
                                " expected 'probabilities' or 'logits'")
    return ServingModel(directory=directory, loaded=loaded, signature=signature,
                        input_name=input_name, input_dtype=spec.dtype, output_key=key,
                        num_classes=int(outputs[key].shape[-1]))
