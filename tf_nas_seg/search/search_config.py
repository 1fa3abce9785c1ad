"""Every setting of an architecture search, as one typed, saved config."""

import dataclasses

from tf_nas_seg.config_sections import (AugmentSection, DataSection, DistributeSection,
                                        RunSection, SpaceSection)
from tf_nas_seg.errors import ConfigError
from tf_nas_seg.utils.flag_fields import setting, validate_config

# Fields that may change between an interrupted run and its resumption.
RESUMABLE_CHANGES = ("run_dir", "stop_after_iterations", "log_every", "checkpoint_every",
                     "threads", "graph_optimizer", "allow_foreign_table", "min_free_mib",
                     "skip_nonfinite_steps", "max_skipped_steps", "strategy", "cpu_devices",
                     "collective_timeout", "recompute_edges")


@dataclasses.dataclass(frozen=True)
class SearchConfig(SpaceSection, DataSection, AugmentSection, RunSection,
                   DistributeSection):
    """Settings of `bin/search`; each field is also a command-line flag.

    The search space, data, augmentation and run settings are the shared sections of
    `tf_nas_seg.config_sections`; the fields below are the search's own.
    """

    # NOTE: the search's own default (RunSection's is 0, one per core): a supernet step
    # is thousands of small ops, many independent (the candidates of each mixed op), so
    # one thread per op with the inter-op pool running several at once beats splitting
    # each op across cores. Measured on 2 cores (docs/DESIGN.md, "Threads"): the demo's
    # step 0.37 s with 1 against 0.90 s with 0; the CamVid-size CAS step 1.26 s against
    # 1.71 s.
    threads: int = setting(1, "TensorFlow intra-op threads of the search; 0: one per "
                           "core. The default, 1, runs each of the supernet's many small "
                           "ops on one thread while the inter-op pool (one thread per "
                           "core) runs independent ops side by side: faster than "
                           "splitting each op on CPUs (docs/DESIGN.md, \"Threads\").",
                           lower=0, upper=1024)

    # Stage and relaxation.
    stage: str = setting("backbone", "CAS stage: 'backbone' searches the normal and "
                         "reduction cells; 'multiscale' searches the multi-scale cell on "
                         "the fixed backbone given by --backbone_genotype.",
                         choices=("backbone", "multiscale"))
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
    synthetic_images: int = setting(96, "Number of generated scenes for 'synthetic' (split "
                                    "in two halves for weights and architecture).",
                                    lower=4, upper=100000)
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
    bn_running_stats: bool = setting(False, "Update the batch-norm moving statistics of "
                                     "the supernet. Both steps normalise with batch "
                                     "statistics and the search never reads them; "
                                     "updating them costs two stateful ops per layer and "
                                     "pass (a third of the first step's compile time).")
    recompute_edges: bool = setting(False, "Run each search edge's candidate ops again "
                                    "in the backward pass instead of keeping their "
                                    "activations (gradient checkpointing): the same "
                                    "values; the DARTS-equivalent step's peak memory "
                                    "21% lower for a 6% slower step and a longer "
                                    "compile; for large inputs or batches "
                                    "(docs/DESIGN.md, Memory).")
    graph_optimizer: str = setting("auto", "Grappler graph optimisation of the search "
                                   "step: on, off, or auto (off without a GPU, where it "
                                   "cost 20 s of the first step and made steps no "
                                   "faster; on with one). See docs/DESIGN.md.",
                                   choices=("auto", "on", "off"))
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
                             "'additive' CE + lambda * cost (CAS eq. 5, AutoRTNet eq. 8), "
                             "'fbnet' CE * lambda * log(cost) ** --cost_exponent "
                             "(FBNet; cost clamped above 1 of its unit) or 'budget' CE + "
                             "lambda * max(0, cost - --cost_target): a hard budget that "
                             "pushes only while the expected cost is over it, or "
                             "'target' CE + lambda * |cost - --cost_target|: the expected "
                             "cost held at the target from both sides (TuNAS's absolute "
                             "reward; see docs/SEARCH.md).",
                             choices=("additive", "fbnet", "budget", "target"))
    cost_target: float = setting(0.0, "The budget of --cost_form=budget or target, in the "
                                 "cost's unit "
                                 "(ms of calibrated latency, GMACs or M params).",
                                 lower=0.0, upper=1e9)
    cost_exponent: float = setting(0.6, "Exponent of log(cost) in --cost_form=fbnet "
                                   "(FBNet: 0.6).", lower=0.0, upper=10.0)
    latency_table: str = setting("", "Latency lookup table (JSON) measured on the target "
                                 "device; required by --cost=latency.")
    allow_foreign_table: bool = setting(False, "Use a --latency_table measured on another "
                                        "device, with another TensorFlow version, at "
                                        "another resolution or for another search space "
                                        "than this search's (refused by default, naming "
                                        "each difference); a warning lists them. Its "
                                        "latencies then price networks they were not "
                                        "measured for.")

    def __post_init__(self):
        validate_config(self)
        self.check_space()
        self.check_augment()
        if self.temperature_end > self.temperature_start:
            raise ConfigError(f"--temperature_end={self.temperature_end} is above "
                             f"--temperature_start={self.temperature_start}; the "
                             "temperature anneals downwards")
        if (self.cost_form in ("budget", "target")
                and not (self.cost != "none" and self.cost_target > 0)):
            raise ConfigError(f"--cost_form={self.cost_form} needs a --cost (latency, macs "
                              "or params) "
                              f"and a --cost_target > 0 in its unit, got --cost={self.cost} "
                              f"--cost_target={self.cost_target:g}; e.g. --cost=latency "
                              "--cost_target=20 for a 20 ms budget")
        if self.method == "autortnet" and self.cost_mode != "per_op":
            raise ConfigError("--cost_mode=cas is CAS's whole-network op cost; AutoRTNet "
                              "prices each op where it sits: use --cost_mode=per_op")

    def to_json(self):
        return dataclasses.asdict(self)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


def search_only_settings():
    """Names of the bin/search settings that a latency table does not depend on.

    A search flagfile builds its space's table (bin/latency_table accepts these settings
    in a --flagfile and ignores them); on a table command line they are refused, so a
    caller that turns search flags into table flags (bin/sweep) drops them.
    """
    from tf_nas_seg.latency.config import LatencyTableConfig

    return tuple(sorted({f.name for f in dataclasses.fields(SearchConfig)}
                        - {f.name for f in dataclasses.fields(LatencyTableConfig)}))


def table_argv(search_argv):
    """`search_argv` without its search-only flags (flagfiles and table flags kept)."""
    search_only = set(search_only_settings())
    kept = []
    for arg in search_argv:
        name = arg[2:].split("=", 1)[0] if arg.startswith("--") else ""
        if name.startswith("no") and name[2:] in search_only:
            name = name[2:]
        if name != "flagfile" and name in search_only:
            continue
        kept.append(arg)
    return kept
