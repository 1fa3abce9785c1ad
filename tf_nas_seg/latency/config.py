"""Settings of `bin/latency_table`, as one typed config.

`LatencyConfig` holds the measurement settings; `LatencyTableConfig` adds the shared
sections the command reads (the search space, the class count, the seed, the device),
and nothing else. The space sections are the ones `SearchConfig` is built from, so a
table is built from the very flagfile the search runs with:
`bin/latency_table --flagfile=configs/camvid.cfg --mode=build ...` (the flagfile's
search-only settings, such as the learning rate, are accepted there and ignored).
"""

import dataclasses

from tf_nas_seg.config_sections import (ClassesSection, DeviceSection, DiskSection,
                                        SeedSection, SpaceSection)
from tf_nas_seg.errors import ConfigError
from tf_nas_seg.utils.flag_fields import setting, validate_config

MODES = ("build", "network", "calibrate", "validate")


@dataclasses.dataclass(frozen=True)
class LatencyConfig:
    """Settings of `bin/latency_table`; each field is also a command-line flag."""

    mode: str = setting("build", "'build': measure every candidate op and fixed layer of "
                        "the search space at the target resolution into --table (resumes "
                        "an interrupted build); 'network': add CAS's whole-network costs "
                        "c'_o (op o on every edge) to --table, for --cost_mode=cas; "
                        "'calibrate': fit measured = offset + scale * table sum on "
                        "--calibration_archs whole networks (what layers timed alone "
                        "miss) and store it in --table; 'validate': compare the table's predictions with measured "
                        "latencies of --num_archs random derived networks.",
                        choices=MODES)
    table: str = setting("", "Latency table JSON: written by --mode=build and "
                         "--mode=network, read by --mode=validate and by bin/search "
                         "--latency_table.")
    latency_batch: int = setting(1, "Batch size of the measured inputs (real-time "
                                 "latency: 1).", lower=1, upper=1024)
    num_classes: int = setting(0, "Classifier outputs; 0: the classes of --dataset "
                               "(camvid 11, cityscapes 19, synthetic --synthetic_classes).",
                               lower=0, upper=1000)
    multiscale: bool = setting(True, "Include CAS's multi-scale cell (the whole CAS "
                               "network); --nomultiscale profiles the backbone-stage "
                               "network only. CAS only: AutoRTNet's multi-scale module "
                               "is fixed and always measured.")
    inter_op_threads: int = setting(1, "TensorFlow inter-op threads while measuring (1: "
                                    "ops run one after another, as the table's sums "
                                    "assume). Intra-op threads: --threads.",
                                    lower=0, upper=1024)
    layer_repeats: int = setting(8, "Copies of each layer in the compiled function that "
                                 "times it, each on its own input; the entry is the "
                                 "marginal cost of one more copy, (t_R - t_1) / (R - 1): "
                                 "what the layer costs between other layers of a network "
                                 "(threads busy, no per-call start-up). 1: the layer alone "
                                 "minus the call overhead (over-counts small layers on "
                                 "CPUs).", lower=1, upper=64)
    warmup: int = setting(3, "Untimed calls of each compiled layer or network after "
                          "tracing.", lower=0, upper=1000)
    min_repeats: int = setting(15, "Fewest timed calls per layer (the median is kept).",
                               lower=1, upper=100000)
    max_repeats: int = setting(400, "Most timed calls per layer.", lower=1, upper=100000)
    min_seconds: float = setting(0.3, "Least total timed seconds per layer: fast layers "
                                 "get more calls, for a stable median.", lower=0.0,
                                 upper=600.0)
    num_archs: int = setting(20, "--mode=validate: random derived networks to measure, "
                             "spread over the predicted-latency range (cheap to "
                             "expensive).", lower=2, upper=10000)
    calibration_archs: int = setting(20, "--mode=calibrate: random derived networks "
                                     "(disjoint from validation's) the linear correction "
                                     "is fitted on.", lower=3, upper=10000)
    session_calibration_archs: int = setting(
        20, "--mode=validate: calibration networks (calibration's sample, disjoint from "
        "the validated ones) timed in the same interleaved rounds as the validated "
        "networks; the headline figures use a fit on them, so the fit and the test see "
        "the same machine speed. The stored calibration's figures and the plain sums' are "
        "reported too. 0: only the stored calibration.", lower=0, upper=10000)
    network_repeats: int = setting(30, "--mode=validate, calibrate and network: fewest timed runs of "
                                   "each whole network (median reported).", lower=1,
                                   upper=100000)
    network_seconds: float = setting(8.0, "--mode=validate, calibrate and network: least total timed "
                                     "seconds per whole network.", lower=0.0,
                                     upper=3600.0)
    network_passes: int = setting(8, "--mode=validate and calibrate: interleaved rounds "
                                  "over all the networks; each round times every network "
                                  "for 1/rounds of --network_repeats and "
                                  "--network_seconds, so a drift of the machine's speed "
                                  "falls on all networks alike.", lower=1, upper=1000)
    network_processes: int = setting(1, "--mode=validate: fresh processes the timing "
                                     "rounds are split over, one after another, each "
                                     "resuming the saved state; medians pool every run. A "
                                     "process's memory placement makes a network a few "
                                     "percent faster or slower for that process's life, "
                                     "which more runs in one process do not average out "
                                     "(as pyperf runs worker processes).", lower=1,
                                     upper=1000)
    max_rounds: int = setting(0, "--mode=validate: time at most this many rounds in this "
                              "process and leave the report partial (rerun to continue); "
                              "0: all. --network_processes sets it for its workers.",
                              lower=0, upper=1000)
    out: str = setting("", "--mode=validate: report JSON path (per-architecture "
                       "predicted and measured ms, MAPE, Spearman, fraction within "
                       "+-10%); the scatter plot is written next to it as .png.")

    def __post_init__(self):
        validate_config(self)
        if self.max_repeats < self.min_repeats:
            raise ConfigError(f"max_repeats={self.max_repeats} is below min_repeats="
                             f"{self.min_repeats}")

    def to_json(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class LatencyTableConfig(SpaceSection, ClassesSection, SeedSection, DeviceSection,
                         DiskSection, LatencyConfig):
    """Every flag of `bin/latency_table`: measurement settings, space, classes, device,
    and the free space the table's folder must have."""

    def __post_init__(self):
        super().__post_init__()
        self.check_space()

