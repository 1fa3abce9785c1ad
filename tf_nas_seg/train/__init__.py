"""Training of derived and hand-designed networks (`bin/train`)."""

from tf_nas_seg.losses import per_pixel_cross_entropy
from tf_nas_seg.train.ohem import SegmentationLoss, ohem_cross_entropy
from tf_nas_seg.train.train_config import TrainConfig
from tf_nas_seg.train.trainer import TrainError, Trainer, run_training, save_model_atomic

__all__ = ["SegmentationLoss", "TrainConfig", "TrainError", "Trainer",
           "ohem_cross_entropy", "per_pixel_cross_entropy", "run_training",
           "save_model_atomic"]
