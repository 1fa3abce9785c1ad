"""Every setting of an architecture search, as one typed, saved config."""

import dataclasses

from tf_nas_seg.utils.flag_fields import setting, validate_config
from tf_nas_seg.errors import ConfigError

from tf_nas_seg.datasets import DATASET_NAMES as DATASETS

# Fields that may change between an interrupted run and its resumption.
RESUMABLE_CHANGES = ("run_dir", "stop_after_iterations", "log_every", "checkpoint_every",
                     "threads")


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """Settings of `bin/search`; each field is also a command-line flag."""

    # Method and stage.
    method: str = setting("cas", "Search method. 'cas': Customizable Architecture Search "
                          "(CVPR 2019), softmax relaxation, separate backbone and "
                          "multi-scale stages. 'autortnet': AutoRTNet (IJCV 2021), "
                          "cells, hyper-cell depths and the aggregation cell searched "
                          "jointly with Gumbel samples.", choices=("cas", "autortnet"))
    stage: str = setting("backbone", "CAS stage: 'backbone' searches the normal and "
                         "reduction cells; 'multiscale' searches the multi-scale cell on "
                         "the fixed backbone given by --backbone_genotype.",
                         choices=("backbone", "multiscale"))
    backbone_genotype: str = setting("", "Path of the genotype.json of a finished backbone "
                                     "search; required by --stage=multiscale.")
    backbone_op_set: str = setting("cas_backbone", "Op set of the backbone cells: CAS's "
                                   "O_b, or DARTS's 8 ops for a head-to-head comparison.",
                                   choices=("cas_backbone", "darts"))
    relaxation: str = setting("softmax", "Relaxation of the op choice: 'softmax' (CAS, "
                              "DARTS) or Gumbel-softmax samples, soft or hard "
                              "(straight-through).",
                              choices=("softmax", "gumbel", "gumbel_hard"))
    exit_relaxation: str = setting("gumbel_hard", "AutoRTNet: relaxation of the exit "
                                   "(depth) choice of each hyper-cell. 'gumbel_hard' "
                                   "samples one exit per step and does not run the cells "
                                   "after it; 'gumbel' and 'softmax' run every cell.",
                                   choices=("softmax", "gumbel", "gumbel_hard"))
    temperature_start: float = setting(3.0, "Gumbel temperature of the first epoch "
                                       "(AutoRTNet: 3.0).", lower=1e-4, upper=100.0)
    temperature_end: float = setting(0.03, "Gumbel temperature of the last epoch "
                                     "(AutoRTNet: 0.03).", lower=1e-4, upper=100.0)
    temperature_schedule: str = setting("exponential", "Shape of the temperature "
                                        "annealing from --temperature_start to "
                                        "--temperature_end over the epochs.",
                                        choices=("exponential", "linear", "constant"))
    # Data.
    dataset: str = setting("synthetic", "Data set: 'synthetic' (bundled procedural street "
                           "scenes, no download), 'camvid' (SegNet layout), 'cityscapes' "
                           "(leftImg8bit/ + gtFine/) or 'cityscapes_tfds' (the "
                           "tensorflow-datasets builder over your downloaded zips).",
                           choices=DATASETS)
    data_dir: str = setting("", "Root directory of the data set (not used for 'synthetic'); "
                            "for 'cityscapes_tfds', where tensorflow-datasets keeps its "
                            "prepared copy (empty: its default, ~/tensorflow_datasets).")
    tfds_manual_dir: str = setting("", "For 'cityscapes_tfds': the directory holding the "
                                   "Cityscapes zips you downloaded.")
    tfds_max_gib: float = setting(8.0, "For 'cityscapes_tfds': the most memory (GiB) a "
                                  "split may take; tfds splits are held in memory, resized "
                                  "to --resize_height/--resize_width while read.",
                                  lower=0.01, upper=1024.0)
    synthetic_images: int = setting(96, "Number of generated scenes for 'synthetic' (split "
                                    "in two halves for weights and architecture).",
                                    lower=4, upper=100000)
    synthetic_height: int = setting(64, "Height of generated scenes.", lower=32, upper=4096)
    synthetic_width: int = setting(128, "Width of generated scenes.", lower=32, upper=4096)
    synthetic_classes: int = setting(6, "Classes of generated scenes (CamVid-11 order).",
                                     lower=3, upper=11)
    resize_height: int = setting(0, "Resize every image to this height before "
                                 "augmentation; 0 keeps the native size.", lower=0,
                                 upper=8192)
    resize_width: int = setting(0, "Resize width; 0 keeps the native size.", lower=0,
                                upper=8192)
    crop_height: int = setting(0, "Random crop height for training batches; 0: no crop.",
                               lower=0, upper=8192)
    crop_width: int = setting(0, "Random crop width; 0: no crop.", lower=0, upper=8192)
    flip: bool = setting(True, "Random horizontal flips of training batches.")
    scale_min: float = setting(1.0, "Lower bound of the random rescaling factor.",
                               lower=0.1, upper=4.0)
    scale_max: float = setting(1.0, "Upper bound of the random rescaling factor.",
                               lower=0.1, upper=4.0)
    # Supernet.
    layout: str = setting("NNRNNRNN", "Backbone cells, N (normal) or R (reduction), in "
                          "order; CAS does not state the order, this one fits its figure.")
    channels: int = setting(16, "CAS: node channels of the first cells (doubled at each "
                            "reduction). AutoRTNet: output channels of the two stem "
                            "convs (the paper's initial 8), multiplied by "
                            "--channel_growth at each reduction.", lower=1, upper=1024)
    channel_growth: int = setting(3, "AutoRTNet: factor of the node channels at each "
                                  "reduction cell (the paper's factor is garbled; read "
                                  "as 3).", lower=1, upper=16)
    hyper_cells: str = setting("5,10,10", "AutoRTNet: initial number of cells of each of "
                               "the three hyper-cells (a reduction cell, then normal "
                               "cells), comma-separated.")
    agg_channels: int = setting(32, "AutoRTNet: width of every node of the aggregation "
                                "cell.", lower=1, upper=1024)
    stem_channels: int = setting(48, "Output channels of the 3-conv stem.", lower=1,
                                 upper=1024)
    steps: int = setting(3, "Intermediate nodes per backbone cell (CAS: 6 nodes = 2 inputs "
                         "+ 3 intermediate + 1 output; AutoRTNet: 2).", lower=1, upper=8)
    low_level_cell: int = setting(1, "Backbone cell feeding the multi-scale cell's "
                                  "low-level input (the second normal cell).", lower=0,
                                  upper=63)
    ms_channels: int = setting(32, "Node channels of the multi-scale cell (AutoRTNet: of "
                               "its fixed multi-scale module).", lower=1, upper=1024)
    ms_steps: int = setting(6, "Intermediate nodes of the multi-scale cell (CAS: 9 nodes).",
                            lower=1, upper=12)
    # Optimisation.
    batch_size: int = setting(16, "Images per batch, for each of the two splits.", lower=1,
                              upper=4096)
    iterations: int = setting(15000, "Search iterations (one weight step and one "
                              "architecture step each).", lower=1, upper=10000000)
    lr: float = setting(0.005, "Initial learning rate of the weights (SGD).", lower=0.0,
                        upper=10.0)
    lr_schedule: str = setting("poly", "Learning-rate schedule of the weights: 'poly' "
                               "(CAS: decay to 0 with --lr_power) or 'cosine' (AutoRTNet: "
                               "from --lr to --lr_min).", choices=("poly", "cosine"))
    lr_power: float = setting(0.9, "Power of the poly learning-rate decay to 0.", lower=0.0,
                              upper=10.0)
    lr_min: float = setting(0.0, "Final learning rate of the cosine schedule (AutoRTNet: "
                            "0.001).", lower=0.0, upper=10.0)
    momentum: float = setting(0.9, "SGD momentum.", lower=0.0, upper=0.999)
    weight_decay: float = setting(5e-4, "L2 weight decay of the weights (coupled, as in "
                                  "PyTorch SGD).", lower=0.0, upper=1.0)
    grad_clip: float = setting(5.0, "Global-norm clip of the weight gradients; 0 "
                               "disables.", lower=0.0, upper=1e6)
    arch_lr: float = setting(3e-4, "Adam learning rate of the architecture logits.",
                             lower=0.0, upper=10.0)
    arch_beta1: float = setting(0.5, "Adam beta_1 of the architecture optimizer.",
                                lower=0.0, upper=0.9999)
    arch_beta2: float = setting(0.999, "Adam beta_2 of the architecture optimizer.",
                                lower=0.0, upper=0.99999)
    arch_weight_decay: float = setting(1e-3, "L2 decay of the architecture logits.",
                                       lower=0.0, upper=1.0)
    arch_start_iteration: int = setting(0, "Iterations of weight-only warm-up before the "
                                        "architecture steps start.", lower=0,
                                        upper=10000000)
    beta_warmup_epochs: int = setting(0, "AutoRTNet: epochs during which the exit logits "
                                      "(beta) stay frozen while weights and op logits "
                                      "train (paper: 50 of 150).", lower=0, upper=100000)
    second_order: bool = setting(False, "Use the unrolled second-order DARTS gradient "
                                 "(finite-difference Hessian-vector product) instead of "
                                 "the first-order approximation CAS uses.")
    # Cost.
    cost: str = setting("none", "Cost term of the architecture loss: 'none', 'params' "
                        "(millions), 'macs' (GMACs) or 'latency' (ms, from "
                        "--latency_table).", choices=("none", "params", "macs", "latency"))
    cost_mode: str = setting("per_op", "'per_op': each op's own cost at the shape it sees "
                             "on each edge; 'cas': c_o = c'_o - c'_id, the whole-network "
                             "cost with op o on every edge minus that with the identity "
                             "(CAS sec. 4.1).", choices=("per_op", "cas"))
    cost_lambda: float = setting(0.0, "Weight lambda of the cost term (per unit of the "
                                 "cost).", lower=0.0, upper=1e9)
    cost_form: str = setting("additive", "How the cost enters the architecture loss: "
                             "'additive' CE + lambda * cost (CAS eq. 5, AutoRTNet eq. 8) "
                             "or 'fbnet' CE * lambda * log(cost) ** --cost_exponent "
                             "(FBNet; cost clamped above 1 of its unit).",
                             choices=("additive", "fbnet"))
    cost_exponent: float = setting(0.6, "Exponent of log(cost) in --cost_form=fbnet "
                                   "(FBNet: 0.6).", lower=0.0, upper=10.0)
    latency_table: str = setting("", "Latency lookup table (JSON) measured on the target "
                                 "device; required by --cost=latency.")
    target_height: int = setting(0, "Input height at which MACs and latency are counted; "
                                 "0: the training input height.", lower=0, upper=8192)
    target_width: int = setting(0, "Input width for the cost; 0: the training input "
                                "width.", lower=0, upper=8192)
    # Run.
    seed: int = setting(0, "Seed of data order, augmentation and initialisation; the same "
                        "seed on the same machine gives the same genotype.", lower=0,
                        upper=2 ** 31 - 1)
    deterministic: bool = setting(True, "Use TensorFlow's deterministic kernels, so that a "
                                  "run and its resumption are bit-identical.")
    threads: int = setting(0, "TensorFlow intra-op threads; 0: one per core.", lower=0,
                           upper=1024)
    run_dir: str = setting("", "Directory of the run: config, checkpoints, TensorBoard "
                           "logs, genotypes, plots, summary. Rerunning the same command "
                           "resumes from its last checkpoint.")
    checkpoint_every: int = setting(0, "Also checkpoint every N iterations inside an "
                                    "epoch; 0: at the end of each epoch only.", lower=0,
                                    upper=10000000)
    log_every: int = setting(10, "Write TensorBoard step scalars every N iterations.",
                             lower=1, upper=1000000)
    stop_after_iterations: int = setting(0, "Stop (with a checkpoint) after N iterations "
                                         "in this invocation, e.g. to fit a time slot; 0: "
                                         "run to the end.", lower=0, upper=10000000)

    def __post_init__(self):
        validate_config(self)
        if self.temperature_end > self.temperature_start:
            raise ConfigError(f"--temperature_end={self.temperature_end} is above "
                             f"--temperature_start={self.temperature_start}; the "
                             "temperature anneals downwards")
        if self.method == "autortnet":
            from tf_nas_seg.networks.autortnet_layout import parse_hyper_cells

            parse_hyper_cells(self.hyper_cells)
            if self.cost_mode != "per_op":
                raise ConfigError("--cost_mode=cas is CAS's whole-network op cost; AutoRTNet "
                                 "prices each op where it sits: use --cost_mode=per_op")

    def to_json(self):
        return dataclasses.asdict(self)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)
