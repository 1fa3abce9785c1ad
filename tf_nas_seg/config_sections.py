"""The config sections every command's typed config is composed from.

A command's config (`SearchConfig`, `TrainConfig`, `EvaluateConfig`, `BenchmarkConfig`,
`LatencyTableConfig`) is a frozen dataclass that inherits the sections it uses, so a
setting shared by several commands (the data set, the seed, the run directory, the
device, the search space) is declared once, with one flag name, one help text and one
set of bounds. A command that needs another default redeclares only that field.

| section          | fields                                                        |
|------------------|---------------------------------------------------------------|
| ClassesSection   | dataset, synthetic_classes (what fixes the class count)       |
| DataSection      | + data_dir, tfds_manual_dir, tfds_max_gib, synthetic_height/width |
| AugmentSection   | resize_*, crop_*, flip, scale_min, scale_max                  |
| SeedSection      | seed                                                          |
| ThreadsSection   | threads                                                       |
| DiskSection      | min_free_mib (checked with the run directory's writability at start) |
| RunSection       | + deterministic, run_dir, checkpoint_every, log_every, stop_after_iterations, |
|                  |   skip_nonfinite_steps, max_skipped_steps, skip_bad_examples,  |
|                  |   min_free_mib                                                 |
| DeviceSection    | + device                                                      |
| SpaceSection     | method, backbone op set and genotype, layout, widths, target size |
| DistributeSection| strategy, cpu_devices, batch_norm, collective_timeout (tf.distribute) |

No TensorFlow import: flags are defined and checked before TensorFlow starts.
"""

import dataclasses

from tf_nas_seg.datasets import DATASET_NAMES
from tf_nas_seg.errors import ConfigError
from tf_nas_seg.utils.flag_fields import setting

BATCH_NORMS = ("sync", "per_replica")
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker")

DEVICES = ("auto", "cpu", "gpu")


@dataclasses.dataclass(frozen=True)
class ClassesSection:
    """What fixes a network's class count: the data set (or the synthetic classes)."""

    dataset: str = setting("synthetic", "Data set: 'synthetic' (bundled procedural street "
                           "scenes, no download), 'camvid' (SegNet layout), 'cityscapes' "
                           "(leftImg8bit/ + gtFine/) or 'cityscapes_tfds' (the "
                           "tensorflow-datasets builder over your downloaded zips).",
                           choices=DATASET_NAMES)
    synthetic_classes: int = setting(6, "Classes of generated scenes (CamVid-11 order).",
                                     lower=3, upper=11)


@dataclasses.dataclass(frozen=True)
class DataSection(ClassesSection):
    """Where the images come from."""

    data_dir: str = setting("", "Root directory of the data set (not used for 'synthetic'); "
                            "for 'cityscapes_tfds', where tensorflow-datasets keeps its "
                            "prepared copy (empty: its default, ~/tensorflow_datasets).")
    tfds_manual_dir: str = setting("", "For 'cityscapes_tfds': the directory holding the "
                                   "Cityscapes zips you downloaded.")
    tfds_max_gib: float = setting(8.0, "For 'cityscapes_tfds': the most memory (GiB) a "
                                  "split may take; tfds splits are held in memory, resized "
                                  "to --resize_height/--resize_width while read.",
                                  lower=0.01, upper=1024.0)
    synthetic_height: int = setting(64, "Height of generated scenes.", lower=32, upper=4096)
    synthetic_width: int = setting(128, "Width of generated scenes.", lower=32, upper=4096)


@dataclasses.dataclass(frozen=True)
class AugmentSection:
    """Training-time augmentation (`tf_nas_seg.data.AugmentConfig`), as flags."""

    resize_height: int = setting(0, "Resize every training image to this height before "
                                 "augmentation; 0 keeps the native size.", lower=0,
                                 upper=8192)
    resize_width: int = setting(0, "Resize width; 0 keeps the native size.", lower=0,
                                upper=8192)
    crop_height: int = setting(0, "Random crop height of training batches; 0: no crop "
                               "(the (resized) native size).", lower=0, upper=8192)
    crop_width: int = setting(0, "Random crop width; 0: no crop.", lower=0, upper=8192)
    flip: bool = setting(True, "Random horizontal flips of training batches.")
    scale_min: float = setting(1.0, "Lower bound of the random rescaling factor.",
                               lower=0.1, upper=4.0)
    scale_max: float = setting(1.0, "Upper bound of the random rescaling factor.",
                               lower=0.1, upper=4.0)

    def check_augment(self):
        """ConfigError for a half-set size pair or an inverted scale range."""
        for name in ("resize", "crop"):
            height, width = getattr(self, f"{name}_height"), getattr(self, f"{name}_width")
            if bool(height) != bool(width):
                raise ConfigError(f"--{name}_height={height} and --{name}_width={width}: "
                                  "set both (HEIGHT and WIDTH) or neither")
        if self.scale_min > self.scale_max:
            raise ConfigError(f"--scale_min={self.scale_min} is above --scale_max="
                              f"{self.scale_max}")

    def augment_config(self):
        """The `AugmentConfig` these flags describe (the one place they are read)."""
        from tf_nas_seg.data.augment_config import AugmentConfig

        crop = (self.crop_height, self.crop_width) if self.crop_height else None
        resize = (self.resize_height, self.resize_width) if self.resize_height else None
        scale = (None if self.scale_min == self.scale_max == 1.0
                 else (self.scale_min, self.scale_max))
        return AugmentConfig(flip=self.flip, scale_range=scale, crop_size=crop,
                             resize=resize)


@dataclasses.dataclass(frozen=True)
class SeedSection:
    seed: int = setting(0, "Seed of data order, augmentation, initialisation and sampling; "
                        "the same seed on the same machine gives the same result.", lower=0,
                        upper=2 ** 31 - 1)


@dataclasses.dataclass(frozen=True)
class ThreadsSection:
    threads: int = setting(0, "TensorFlow intra-op threads; 0: one per core.", lower=0,
                           upper=1024)


@dataclasses.dataclass(frozen=True)
class DiskSection:
    """What a command that writes a run directory (or a table) checks before it starts."""

    min_free_mib: int = setting(
        100, "Refuse to start when the disk of the run directory (or of the table or "
        "report) has less free space than this many MiB; the directory must also be "
        "writable. Checkpoints, models and tables written to a full disk fail (the "
        "previous file is kept), so this stops a run before work is lost. 0: no "
        "free-space check.", lower=0, upper=10 ** 9)


@dataclasses.dataclass(frozen=True)
class RunSection(SeedSection, ThreadsSection, DiskSection):
    """A resumable run directory: checkpoints, logs, stop and resume."""

    deterministic: bool = setting(True, "Use TensorFlow's deterministic kernels, so that a "
                                  "run and its resumption are bit-identical.")
    run_dir: str = setting("", "Directory of the run: config, checkpoints, TensorBoard "
                           "logs, results, plots, summary. Rerunning the same command "
                           "resumes from its last checkpoint.")
    checkpoint_every: int = setting(0, "Also checkpoint every N iterations inside an "
                                    "epoch; 0: at the end of each epoch only.", lower=0,
                                    upper=10000000)
    log_every: int = setting(10, "Write TensorBoard step scalars every N iterations.",
                             lower=1, upper=1000000)
    stop_after_iterations: int = setting(0, "Stop (with a checkpoint) after N iterations "
                                         "in this invocation, e.g. to fit a time slot; 0: "
                                         "run to the end.", lower=0, upper=100000000)
    skip_nonfinite_steps: bool = setting(
        False, "Skip a step whose loss (search: the weight loss, the expected cost or the "
        "architecture loss) is NaN or infinite instead of stopping the run: the "
        "variables (weights, optimizer slots, batch-norm statistics, architecture "
        "logits) are put back as they were before it and the run goes on with the next "
        "batch. Skipped steps are logged and counted in history.json, the summary and "
        "RUN_DIR/skipped_steps.json. Costs one copy of the variables per step. May be "
        "turned on when resuming a run that stopped at such a step.")
    max_skipped_steps: int = setting(
        20, "With --skip_nonfinite_steps: stop the run when more than this many "
        "consecutive steps are skipped (it has diverged, not met one bad batch).",
        lower=0, upper=1000000)
    skip_bad_examples: bool = setting(
        False, "Leave bad examples of a data set on disk (a corrupt or truncated image, "
        "a label of the wrong size or with values outside the classes and the ignore "
        "label, a list line naming a missing file, an image without its label) out of "
        "the run, each logged and counted in the summary and RUN_DIR/skipped_examples"
        ".json, instead of stopping with an error naming the file. A wrong layout or an "
        "empty split is still an error. Changes the data, so it cannot change when a "
        "run resumes.")


@dataclasses.dataclass(frozen=True)
class DeviceSection(ThreadsSection):
    """The device a command measures or runs on."""

    device: str = setting("auto", "Device to run on: 'auto' (the first GPU when one is "
                          "present, else the CPU), 'gpu' or 'cpu'.", choices=DEVICES)


@dataclasses.dataclass(frozen=True)
class DistributeSection:
    """How a search or training is spread over devices and machines (tf.distribute);
    see docs/DISTRIBUTED.md. `--batch_size` stays the global batch: a run on N
    replicas makes the same updates as one device with the same settings."""

    strategy: str = setting(
        "auto", "How the steps are spread over devices: 'one_device'; 'mirrored' (every "
        "GPU of this machine, or --cpu_devices logical CPUs, one replica each); "
        "'multi_worker' (MultiWorkerMirroredStrategy over the machines the TF_CONFIG "
        "environment variable lists; every worker runs the same command); 'auto' "
        "(multi_worker when TF_CONFIG names several workers, else mirrored with several "
        "GPUs or --cpu_devices > 1, else one_device). --batch_size is the global batch, split evenly over "
        "the replicas. May change when a run resumes.", choices=STRATEGIES)
    cpu_devices: int = setting(
        0, "Split the CPU into this many logical devices (0 or 1: don't), so that "
        "--strategy=mirrored can be tried without GPUs. They share the CPU's cores, so "
        "this is not faster. May change when a run resumes.", lower=0, upper=64)
    batch_norm: str = setting(
        "sync", "Batch-norm statistics with several replicas: 'sync' (mean and variance "
        "over the global batch, all-reduced in every batch-norm layer: the result does "
        "not depend on the number of replicas, and small per-device segmentation "
        "batches keep useful statistics) or 'per_replica' (each replica normalises "
        "with its own share of the batch: no communication in the forward pass, but "
        "the updates then depend on the replica count). No effect on one replica.",
        choices=BATCH_NORMS)
    collective_timeout: float = setting(
        0.0, "multi_worker: seconds a cross-worker all-reduce may wait for the other "
        "workers before the run fails; 0: no limit (a worker that dies is still "
        "detected by TensorFlow's health checks, in under a minute). Keep it above the "
        "longest pause between steps (tracing, evaluation). May change when a run "
        "resumes.", lower=0.0, upper=1e6)


@dataclasses.dataclass(frozen=True)
class SpaceSection:
    """The searched network space: what a supernet, a latency table and a cost model share.

    `bin/latency_table` reads exactly these (with `ClassesSection`), so a table built from
    a search's flagfile prices the network that search explores.
    """

    method: str = setting("cas", "Search method. 'cas': Customizable Architecture Search "
                          "(CVPR 2019), softmax relaxation, separate backbone and "
                          "multi-scale stages. 'autortnet': AutoRTNet (IJCV 2021), "
                          "cells, hyper-cell depths and the aggregation cell searched "
                          "jointly with Gumbel samples. 'darts': DARTS (ICLR 2019), its 8 "
                          "ops in CAS's network, backbone cells only (the baseline).",
                          choices=("cas", "autortnet", "darts"))
    backbone_genotype: str = setting("", "Path of the genotype.json of a finished backbone "
                                     "search; required by --stage=multiscale.")
    backbone_op_set: str = setting("cas_backbone", "Op set of the backbone cells: CAS's "
                                   "O_b, or DARTS's 8 ops for a head-to-head comparison.",
                                   choices=("cas_backbone", "darts"))
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
    target_height: int = setting(0, "Input height at which MACs and latency are counted; "
                                 "0: the training input height.", lower=0, upper=8192)
    target_width: int = setting(0, "Input width for the cost; 0: the training input "
                                "width.", lower=0, upper=8192)

    def check_space(self):
        """ConfigError for a malformed AutoRTNet --hyper_cells; DARTS gets its op set."""
        if self.method == "darts":
            object.__setattr__(self, "backbone_op_set", "darts")  # DARTS is its op set
        if self.method == "autortnet":
            from tf_nas_seg.networks.autortnet_layout import parse_hyper_cells

            parse_hyper_cells(self.hyper_cells)
