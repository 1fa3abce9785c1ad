"""Training of derived and hand-designed networks (`bin/train`)."""

import importlib

# Exported names and the modules that define them, imported on first use (PEP 562) so
# that importing one light module of this package (its config, say) does not import
# TensorFlow: the commands parse and check their flags before loading it.
_EXPORTS = {
    "per_pixel_cross_entropy": "tf_nas_seg.losses",
    "SegmentationLoss": "tf_nas_seg.train.ohem",
    "ohem_cross_entropy": "tf_nas_seg.train.ohem",
    "TrainConfig": "tf_nas_seg.train.train_config",
    "TrainError": "tf_nas_seg.train.trainer",
    "Trainer": "tf_nas_seg.train.trainer",
    "run_training": "tf_nas_seg.train.trainer",
    "save_model_atomic": "tf_nas_seg.train.trainer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
