"""Every setting of `bin/sweep`, as one typed, saved config (fields are absl flags)."""

import dataclasses
import shlex

from tf_nas_seg.config_sections import DiskSection, ThreadsSection
from tf_nas_seg.errors import ConfigError
from tf_nas_seg.utils.flag_fields import setting, validate_config

METHODS = ("cas", "autortnet")
PEERS = ("fast_scnn", "bisenetv2")

# Fields that may change between an interrupted sweep and its resumption: they do not
# change any finished point's result (peers, lambdas and random add or drop points, each
# named by what it is; timing
# settings only change the shared benchmark, which is rerun when they change).
RESUMABLE_CHANGES = ("run_dir", "bench_runs", "bench_warmup", "threads", "peers",
                     "random", "stop_after", "lambdas", "autortnet_lambdas", "order",
                     "targets", "autortnet_targets", "exact_targets",
                     "autortnet_exact_targets", "random_band_from", "min_free_mib",
                     # more random networks near the searched ones add points; the band
                     # they are drawn in may not change (their samples file says so)
                     "random_near", "random_near_from", "random_near_band",
                     # more trainings of a network add to its mean; none is redone
                     "train_seeds", "seed_points",
                     # where the flagfiles are may change (a moved checkout, another
                     # machine); what they say may not (flagfiles.json holds their hashes)
                     "cas_flagfile", "autortnet_flagfile", "train_flagfile")


def split_list(text):
    """"a, b,,c" -> ["a", "b", "c"]."""
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_floats(text, name):
    values = []
    for item in split_list(text):
        try:
            values.append(float(item))
        except ValueError:
            raise ConfigError(f"--{name}: {item!r} is not a number (give a comma-separated "
                             "list, e.g. --lambdas=0.002,0.01)") from None
        if values[-1] < 0:
            raise ConfigError(f"--{name}: lambda {item} is negative")
    return values


@dataclasses.dataclass(frozen=True)
class SweepConfig(ThreadsSection, DiskSection):
    """Settings of `bin/sweep`; each field is also a command-line flag.

    A sweep is a set of points, each a network trained with one recipe: one searched
    network per (method, lambda), `random` random networks per method and the peers.
    Every point is run by the ordinary commands (bin/search, bin/train) in its own run
    directory under `run_dir/points/`, so each resumes on its own, and all trained
    networks are timed together by bin/benchmark's interleaved method at the end.

    Of the shared sections it takes only `ThreadsSection` (the shared benchmark's
    threads) and `DiskSection` (the free space its directory must have): the data, augmentation, seed and run settings of its points come from the
    search and training flagfiles it runs, and its `run_dir` holds points, not a
    checkpointed run of its own.
    """

    FLAG_ALIASES = {"sweep_dir": "run_dir", "resolution": "size"}  # older flag names
    # Keys of a config.json written under the older names (read as the new ones).
    RENAMED = {"sweep_dir": "run_dir", "resolution": "size"}

    run_dir: str = setting("", "Directory of the sweep: its config, the latency tables it "
                             "built, one run directory per point, the shared benchmark, "
                             "results.json, results.md and plots/. Rerunning the same "
                             "command resumes; finished points are never recomputed.")
    methods: str = setting("cas,autortnet", "Search methods swept, comma-separated "
                           "(cas, autortnet); empty: no searches (random and peers only).")
    lambdas: str = setting("0.002,0.01", "Cost weights lambda, comma-separated, each one "
                           "search per method (per ms with --cost=latency, per GMAC with "
                           "macs, per million parameters with params).")
    autortnet_lambdas: str = setting("", "Lambdas of the AutoRTNet searches if they should "
                                     "differ from --lambdas; empty: --lambdas.")
    targets: str = setting("", "Budgets instead of lambdas: one search per method and "
                           "budget T with --cost_form=budget --cost_target=T "
                           "--cost_lambda=--budget_lambda (the cost term pushes only "
                           "while the expected cost is over T), comma-separated, in the "
                           "cost's unit (ms for --cost=latency); empty: --lambdas.")
    autortnet_targets: str = setting("", "Budgets of the AutoRTNet searches if they should "
                                     "differ from --targets (AutoRTNet then searches by "
                                     "budget even when the other methods search by "
                                     "lambda); empty: --targets.")
    exact_targets: str = setting("", "Targets held from both sides: one search per method "
                                 "and target T with --cost_form=target --cost_target=T "
                                 "--cost_lambda=--budget_lambda (the cost term pulls the "
                                 "expected cost to T from above and below, so the search "
                                 "spends the budget), comma-separated, in the cost's unit; "
                                 "points named METHOD_exactT, alongside any --targets.")
    autortnet_exact_targets: str = setting("", "Targets of the AutoRTNet searches held from "
                                           "both sides if they should differ from "
                                           "--exact_targets.")
    budget_lambda: float = setting(0.1, "The lambda of every budget search (per unit over "
                                   "the budget).", lower=0.0, upper=1e9)
    cost: str = setting("latency", "Cost term of every search: 'latency' (the table of the "
                        "target device, the papers' setting), 'macs' or 'params'.",
                        choices=("latency", "macs", "params"))
    cas_flagfile: str = setting("configs/camvid.cfg", "Flagfile of the CAS searches (its "
                                "data, widths, schedule and target size); --cost, "
                                "--cost_lambda, --latency_table and --run_dir are set by "
                                "the sweep.")
    autortnet_flagfile: str = setting("configs/camvid_autortnet.cfg", "Flagfile of the "
                                      "AutoRTNet searches.")
    search_args: str = setting("", "Extra flags for every search, as on a command line "
                               "(e.g. \"--iterations=500 --seed=1\"); they override the "
                               "flagfiles.")
    cas_search_args: str = setting("", "Extra flags for the CAS searches only, after "
                                   "--search_args (e.g. \"--iterations=1000\").")
    autortnet_search_args: str = setting("", "Extra flags for the AutoRTNet searches only, "
                                         "after --search_args.")
    train_flagfile: str = setting("configs/camvid_train.cfg", "Flagfile of the one training "
                                  "recipe every network of the sweep is trained with.")
    train_args: str = setting("", "Extra flags for every training (e.g. "
                              "\"--class_weights=median_frequency\"), after the flagfile.")
    train_seeds: str = setting("", "Extra training seeds, comma-separated: each point of "
                               "--seed_points is trained again with the same recipe and "
                               "--seed=S for each S (into its train_seedS/, one round of "
                               "points per seed, after the first trainings). A point's "
                               "val mIoU is then the mean over its trainings (sd and each "
                               "training in the results), and the table gives the "
                               "pooled training noise. Empty: one training per point.")
    seed_points: str = setting("", "Points trained with --train_seeds, comma-separated "
                               "point names (e.g. peer_fast_scnn,autortnet_target19); "
                               "empty: every point.")
    data_dir: str = setting("", "Data set root passed to every search and training "
                            "(empty: the flagfiles' own, or none for synthetic data).")
    cas_table: str = setting("", "Latency table of the CAS space (bin/latency_table); "
                             "empty with --cost=latency: the sweep builds and calibrates "
                             "one in run_dir/tables/ from --cas_flagfile.")
    autortnet_table: str = setting("", "Latency table of the AutoRTNet space; empty with "
                                   "--cost=latency: built and calibrated in "
                                   "run_dir/tables/.")
    table_args: str = setting("", "Extra flags for the table builds (e.g. "
                              "\"--min_seconds=0.1\").")
    calibrate_tables: bool = setting(True, "Calibrate the tables the sweep builds "
                                     "(bin/latency_table --mode=calibrate).")
    random: int = setting(5, "Random architectures per method in --random_methods, trained "
                          "with the same recipe (the baseline).", lower=0, upper=1000)
    random_methods: str = setting("", "Spaces the random architectures are drawn from, "
                                  "comma-separated; empty: --methods.")
    random_band: float = setting(0.25, "Keep only random architectures whose table-predicted "
                                 "latency lies within this fraction around the range of "
                                 "the searched networks of the same method "
                                 "([min * (1 - band), max * (1 + band)]); 0: no band, draw "
                                 "from the whole space. Needs --cost=latency.", lower=0.0,
                                 upper=100.0)
    random_band_from: str = setting("", "Searched points whose latencies set the band, "
                                    "comma-separated point names (e.g. "
                                    "autortnet_target19,autortnet_target23); empty: every "
                                    "searched point of the method. Naming them lets a "
                                    "search be added after the random networks were "
                                    "drawn without drawing them again.")
    random_near: int = setting(0, "More random architectures per method, drawn in a "
                               "tight band around the predicted latencies of the "
                               "searched networks named by --random_near_from "
                               "(--random_near_band), trained with the same recipe and "
                               "named random_<method>_near_NN: the random networks of "
                               "the wide band are mostly slower than the searched ones, "
                               "so these measure the random line where the searched "
                               "networks are instead of extrapolating it. They join the "
                               "random baseline (mean, sd, line).", lower=0, upper=1000)
    random_near_band: float = setting(0.05, "Fraction around the predicted-latency range "
                                      "of the --random_near_from networks that the "
                                      "--random_near networks are drawn in.", lower=0.0,
                                      upper=10.0)
    random_near_from: str = setting("", "Searched points whose predicted latencies set the "
                                    "--random_near band, comma-separated point names; "
                                    "empty: every searched point of the method.")
    random_seed: int = setting(0, "Seed of the random architectures.", lower=0,
                               upper=2 ** 31 - 1)
    peers: str = setting("fast_scnn,bisenetv2", "Hand-designed networks trained with the "
                         "same recipe, comma-separated (fast_scnn, bisenetv2), each "
                         "optionally with a width multiplier after a colon "
                         "(bisenetv2:0.5); empty: none.")
    size: str = setting("", "HEIGHTxWIDTH at which every network is timed; empty: the "
                              "searches' --target_height x --target_width.")
    bench_runs: int = setting(100, "Timed batch-1 runs per network in the shared benchmark "
                              "(interleaved, run i of every network before run i + 1).",
                              lower=1, upper=100000)
    bench_warmup: int = setting(10, "Untimed runs per network before timing.", lower=0,
                                upper=100000)
    order: str = setting("stages", "Order of the work: 'stages' runs every search, then "
                         "every training; 'points' trains each searched network right "
                         "after its search (then the peers, then the random networks, "
                         "which are drawn once all searches are done), so finished "
                         "points arrive early: for time slots and machines that do not "
                         "keep their disk (see --pack). Results do not depend on it.",
                         choices=("stages", "points"))
    stop_after: str = setting("", "Stop after this stage (for time slots): 'tables', "
                              "'searches', 'random', 'train' or 'bench'; empty: run all.",
                              choices=("", "tables", "searches", "random", "train",
                                       "bench"))

    def __post_init__(self):
        validate_config(self)
        for name in ("methods", "random_methods"):
            for method in split_list(getattr(self, name)):
                if method not in METHODS:
                    raise ConfigError(f"--{name}: unknown method {method!r}; choose from "
                                     f"{list(METHODS)}")
        self.peer_list()  # checks the names and widths
        parse_floats(self.lambdas, "lambdas")
        parse_floats(self.autortnet_lambdas, "autortnet_lambdas")
        for name in ("targets", "autortnet_targets", "exact_targets",
                     "autortnet_exact_targets"):
            if any(t <= 0 for t in parse_floats(getattr(self, name), name)):
                raise ConfigError(f"--{name}: a budget must be > 0 (in the cost's unit, "
                                  f"e.g. --{name}=14,18 for 14 and 18 ms), got "
                                  f"{getattr(self, name)!r}")
        first = split_list(self.methods)[0] if split_list(self.methods) else None
        if first and not (self.lambda_list(first) or self.target_list(first)
                          or self.exact_target_list(first)):
            raise ConfigError("--lambdas is empty: give at least one lambda per method, "
                             "e.g. --lambdas=0.002,0.01 (or --methods= for no searches)")
        if self.random_band and self.cost != "latency" and self.random:
            raise ConfigError(f"--random_band={self.random_band} selects random networks by "
                             "their table-predicted latency, which needs --cost=latency; "
                             "pass --random_band=0 to draw from the whole space")
        if self.random_near and self.cost != "latency":
            raise ConfigError(f"--random_near={self.random_near} draws random networks by "
                             "their table-predicted latency, which needs --cost=latency; "
                             "pass --random_near=0")
        if self.random_near and not self.random_near_band:
            raise ConfigError("--random_near_band=0 leaves no latency to draw the "
                             "--random_near networks in: give a fraction such as 0.05")
        self.seed_list()  # checks the seeds
        for name in ("search_args", "cas_search_args", "autortnet_search_args", "train_args",
                     "table_args"):
            try:
                shlex.split(getattr(self, name))
            except ValueError as e:
                raise ConfigError(f"--{name}: {e}") from None

    def method_list(self):
        return split_list(self.methods)

    def random_method_list(self):
        return split_list(self.random_methods) or self.method_list()

    def drawn_method_list(self):
        """The methods random networks are drawn from (none without --random or
        --random_near)."""
        return self.random_method_list() if self.random or self.random_near else []

    def peer_list(self):
        """[(peer name, width multiplier)] of --peers ("fast_scnn,bisenetv2:0.5")."""
        peers = []
        for item in split_list(self.peers):
            name, _, width = item.partition(":")
            if name not in PEERS:
                raise ConfigError(f"--peers: unknown peer {name!r}; choose from {list(PEERS)}")
            try:
                multiplier = float(width) if width else 1.0
            except ValueError:
                multiplier = -1.0
            if not 0.05 <= multiplier <= 16.0:
                raise ConfigError(f"--peers: {item!r}: the width after ':' must be a "
                                 "multiplier between 0.05 and 16 (e.g. bisenetv2:0.5)")
            peers.append((name, multiplier))
        return peers

    def seed_list(self):
        """The extra training seeds of --train_seeds, as ints, in order, once each."""
        seeds = []
        for item in split_list(self.train_seeds):
            try:
                seed = int(item)
            except ValueError:
                seed = -1
            if not 0 <= seed < 2 ** 31:
                raise ConfigError(f"--train_seeds: {item!r} is not a seed (give "
                                  "comma-separated integers >= 0, e.g. --train_seeds=1,2)")
            if seed not in seeds:
                seeds.append(seed)
        return seeds

    def seed_point_list(self):
        return split_list(self.seed_points)

    def lambda_list(self, method):
        if method == "autortnet" and split_list(self.autortnet_lambdas):
            return parse_floats(self.autortnet_lambdas, "autortnet_lambdas")
        return parse_floats(self.lambdas, "lambdas")

    def target_list(self, method):
        """The budgets `method` searches with (empty: it searches by lambda)."""
        if method == "autortnet" and split_list(self.autortnet_targets):
            return parse_floats(self.autortnet_targets, "autortnet_targets")
        return parse_floats(self.targets, "targets")

    def exact_target_list(self, method):
        """The targets `method` searches with --cost_form=target (held from both sides)."""
        if method == "autortnet" and split_list(self.autortnet_exact_targets):
            return parse_floats(self.autortnet_exact_targets, "autortnet_exact_targets")
        return parse_floats(self.exact_targets, "exact_targets")

    def flagfile(self, method):
        return self.cas_flagfile if method == "cas" else self.autortnet_flagfile

    def method_search_args(self, method):
        return self.cas_search_args if method == "cas" else self.autortnet_search_args

    def table(self, method):
        return self.cas_table if method == "cas" else self.autortnet_table

    def to_json(self):
        return dataclasses.asdict(self)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)
