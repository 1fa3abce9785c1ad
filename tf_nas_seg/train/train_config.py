"""Every setting of `bin/train`, as one typed, saved config (fields are absl flags)."""

import dataclasses

from tf_nas_seg.config_sections import (AugmentSection, DataSection, DistributeSection,
                                        RunSection)
from tf_nas_seg.errors import ConfigError
from tf_nas_seg.utils.flag_fields import setting, validate_config
PEERS = ("fast_scnn", "bisenetv2")

# Fields that may change between an interrupted run and its resumption.
RESUMABLE_CHANGES = ("run_dir", "stop_after_iterations", "log_every", "checkpoint_every",
                     "threads", "val_max_images", "min_free_mib",
                     "skip_nonfinite_steps", "max_skipped_steps", "strategy", "cpu_devices",
                     "collective_timeout")


@dataclasses.dataclass(frozen=True)
class TrainConfig(DataSection, AugmentSection, RunSection, DistributeSection):
    """Settings of `bin/train`; each field is also a command-line flag.

    Data, augmentation and run settings are the shared sections of
    `tf_nas_seg.config_sections`; the recipe's own defaults are redeclared below.

    Defaults are the retraining recipe of CAS and AutoRTNet (SPEC.md sections 3-4):
    SGD momentum 0.9, lr 0.01 with poly decay (power 0.9), weight decay 5e-4, OHEM
    cross-entropy, random flip, random scale 0.5-2.0 and random crop.
    """

    # Network.
    genotype: str = setting("", "Path of the genotype.json of a search (bin/search writes "
                            "it to its --run_dir); the network derived from it is trained.")
    peer: str = setting("", "Train a hand-designed network instead of a searched one, "
                        "built from the same op library: 'fast_scnn' (Fast-SCNN style) or "
                        "'bisenetv2' (BiSeNet V2 style).",
                        choices=("",) + PEERS)
    method: str = setting("", "If set, the method the genotype must come from; a genotype "
                          "of another method is refused.", choices=("", "cas", "darts",
                                                                    "autortnet"))
    width_multiplier: float = setting(1.0, "Scales every channel count of the network "
                                      "(1.0 = the searched or published widths).",
                                      lower=0.05, upper=16.0)
    # Data.
    train_split: str = setting("train", "Split the network is trained on.")
    val_split: str = setting("val", "Split used to pick the best checkpoint and for the "
                             "final scores.")
    synthetic_images: int = setting(256, "Training scenes for 'synthetic'.", lower=1,
                                    upper=100000)
    synthetic_val_images: int = setting(32, "Validation scenes for 'synthetic'.", lower=1,
                                        upper=100000)
    eval_height: int = setting(0, "Run validation at this input height (predictions are "
                               "resized back to the label size); 0: native.", lower=0,
                               upper=8192)
    eval_width: int = setting(0, "Validation input width; 0: native.", lower=0, upper=8192)
    # Optimisation.
    batch_size: int = setting(16, "Images per batch.", lower=1, upper=4096)
    iterations: int = setting(20000, "Training iterations.", lower=1, upper=100000000)
    lr: float = setting(0.01, "Initial learning rate (SGD).", lower=0.0, upper=10.0)
    lr_power: float = setting(0.9, "Power of the poly learning-rate decay to 0.", lower=0.0,
                              upper=10.0)
    momentum: float = setting(0.9, "SGD momentum.", lower=0.0, upper=0.999)
    weight_decay: float = setting(5e-4, "L2 weight decay (coupled, added to the loss as "
                                  "wd/2 * |w|^2, as PyTorch's SGD applies it).", lower=0.0,
                                  upper=1.0)
    loss: str = setting("ohem", "'ohem': online bootstrapped cross-entropy over the hardest "
                        "pixels; 'ce': plain cross-entropy.", choices=("ohem", "ce"))
    ohem_threshold: float = setting(0.7, "OHEM: pixels whose true-class probability is "
                                    "below this are hard.", lower=1e-6, upper=1.0)
    ohem_min_kept: float = setting(1 / 16, "OHEM: fraction of labelled pixels always kept "
                                   "(the hardest), so the loss never vanishes.", lower=0.0,
                                   upper=1.0)
    class_weights: str = setting(
        "none", "Class-balanced loss (for both --loss=ohem and ce): 'none' (unweighted); "
        "'median_frequency': weight(c) = median_c' freq(c') / freq(c), freq(c) = pixels "
        "of c / labelled pixels of the training images containing c (Eigen & Fergus "
        "2015, as SegNet on CamVid); 'enet': weight(c) = 1 / ln(1.02 + p(c)), p(c) = "
        "pixels of c / all labelled pixels (ENet). Counted once over the train split's "
        "labels as stored (before augmentation; ignored pixels never count) and kept in "
        "RUN_DIR/class_weights.json, which a resumed run reads back. A class absent "
        "from the train split gets weight 0 (with a warning). The loss is the weighted "
        "mean sum(w*CE)/sum(w) over the labelled (ce) or hard (ohem) pixels.",
        choices=("none", "median_frequency", "enet"))
    precision: str = setting("float32", "Compute precision: 'float32', 'mixed_float16' "
                             "(GPUs; dynamic loss scaling) or 'mixed_bfloat16'.",
                             choices=("float32", "mixed_float16", "mixed_bfloat16"))
    # Run.
    eval_every: int = setting(0, "Evaluate on the val split every N iterations and keep "
                              "the best checkpoint; 0: only at the end.", lower=0,
                              upper=100000000)
    val_max_images: int = setting(0, "Evaluate on the first N val images only; 0: all.",
                                  lower=0, upper=100000000)
    overlays: int = setting(4, "Prediction overlays (image | truth | prediction) drawn at "
                            "the end.", lower=0, upper=1000)

    # Recipe defaults that differ from the shared sections'.
    scale_min: float = setting(0.5, "Lower bound of the random rescaling factor.",
                               lower=0.1, upper=4.0)
    scale_max: float = setting(2.0, "Upper bound of the random rescaling factor.",
                               lower=0.1, upper=4.0)
    checkpoint_every: int = setting(500, "Checkpoint every N iterations (and at every "
                                    "evaluation and at the end).", lower=1,
                                    upper=100000000)

    def __post_init__(self):
        validate_config(self)
        self.check_augment()
        if bool(self.eval_height) != bool(self.eval_width):
            raise ConfigError(f"--eval_height={self.eval_height} and --eval_width="
                              f"{self.eval_width}: set both (HEIGHT and WIDTH) or neither")

    def to_json(self):
        return dataclasses.asdict(self)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)
