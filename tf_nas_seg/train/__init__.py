"""Training of derived and hand-designed networks (`bin/train`)."""

from tf_nas_seg.utils.lazy import lazy_exports

# Exported names and the modules that define them, imported on first use
# (tf_nas_seg/utils/lazy.py): the commands check their flags before TensorFlow loads.
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

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
