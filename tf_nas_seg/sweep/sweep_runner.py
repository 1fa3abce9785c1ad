"""`bin/sweep`'s engine: search, derive, retrain, time and compare, resumably.

Stages, each resumable and each skipped when its outputs are complete:

1. tables: with --cost=latency and no table given, build (and calibrate) each searched
   space's latency table with bin/latency_table;
2. searches: one bin/search per (method, lambda), with the table (with --order=points
   each searched network is trained right after its search);
3. random: K random architectures per method, drawn once (optionally inside a latency
   band around that method's searched networks) and stored;
4. train: every searched network, every peer and every random network trained by
   bin/train with the one recipe;
5. bench: all trained networks timed together by bin/benchmark (interleaved runs);
6. results: results.json, results.md and plots/pareto.png (also written after every
   finished point, so a sweep in progress can be looked at).

Points run as child processes of the ordinary commands, each in its own run directory,
so every point checkpoints and resumes by itself and a point that finished is never
run again. SIGINT/SIGTERM are passed on to the running child, which checkpoints; the
sweep then stops and the same command resumes it.
"""

import os
import shlex
import signal
import subprocess
import sys
import time

from absl import flags

from tf_nas_seg.errors import UserError
from tf_nas_seg.search.search_config import table_argv
from tf_nas_seg.space.genotype import Genotype, write_json_atomic
from tf_nas_seg.sweep.sweep_config import RESUMABLE_CHANGES, SweepConfig, split_list
from tf_nas_seg.utils.json_files import read_json, run_completed

INTERRUPTED = 3  # exit status of an interrupted bin/search or bin/train
# The directory holding the tf_nas_seg package (the repository root of a checkout).
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class SweepError(UserError):
    """The sweep cannot go on as configured; the message says what to change."""


class SweepInterrupted(Exception):
    """A child stopped on a signal after checkpointing; rerunning resumes."""


def _say(message):
    print(f"[sweep] {message}", file=sys.stderr, flush=True)


def _read_json(path):
    return read_json(path, SweepError, "delete it to recompute that step")


def _completed(path):
    return run_completed(path, SweepError)


def parse_command_config(config_cls, argv, what):
    """The config a command would build from `argv` (its flagfile and flags)."""
    from tf_nas_seg.utils.flag_fields import config_from_flags, define_flags

    values = flags.FlagValues()
    define_flags(config_cls, flag_values=values)
    try:
        values(["sweep"] + list(argv))
        return config_from_flags(config_cls, values)
    except (flags.Error, ValueError) as e:
        raise SweepError(f"the {what} flags {' '.join(argv)!r} are not valid: {e}") from None


def label_of(point):
    """A short label for tables and plots: 'cas l=0.002', 'random cas 3', 'fast_scnn'."""
    if point["kind"] == "searched" and point.get("target") is not None:
        sign = "=" if point.get("form") == "target" else "≤"
        return f"{point['method']} {sign}{point['target']:g}{point.get('unit', '')}"
    if point["kind"] == "searched":
        return f"{point['method']} λ={point['lambda']:g}"
    if point["kind"] == "random":
        group = f"{point['group']} " if point.get("group") else ""
        return f"random {point['method']} {group}{point['index']}"
    return point["peer"] if point["width"] == 1.0 else f"{point['peer']} x{point['width']:g}"


def _config_path(path):
    """An absolute flagfile path: as given (from the working directory), else the
    repository's own configs/ (so the defaults work from any directory)."""
    path = os.path.expanduser(path)
    if os.path.exists(path) or os.path.isabs(path):
        return os.path.abspath(path)
    candidate = os.path.join(REPO_ROOT, path)
    return candidate if os.path.exists(candidate) else os.path.abspath(path)


class SweepRunner:
    """Owns one sweep directory (see the module docstring).

    Args:
        config: A SweepConfig.
        python: The interpreter the child commands run with.
    """

    def __init__(self, config: SweepConfig, python=sys.executable):
        if not config.run_dir:
            raise SweepError("--run_dir is required: the directory where the sweep keeps "
                             "its points, tables and results")
        absolute = lambda p: os.path.abspath(os.path.expanduser(p)) if p else p  # noqa: E731
        self.config = config.replace(
            run_dir=absolute(config.run_dir),
            cas_flagfile=_config_path(config.cas_flagfile),
            autortnet_flagfile=_config_path(config.autortnet_flagfile),
            train_flagfile=_config_path(config.train_flagfile),
            data_dir=absolute(config.data_dir),
            cas_table=absolute(config.cas_table),
            autortnet_table=absolute(config.autortnet_table))
        self.dir = self.config.run_dir
        self.python = python
        self._child = None
        self._signal = None
        self._check_inputs()

    # Inputs ---------------------------------------------------------------------------
    def _check_inputs(self):
        c = self.config
        needed = [("train_flagfile", c.train_flagfile)]
        methods = set(c.method_list()) | set(c.drawn_method_list())
        needed += [(f"{m}_flagfile", c.flagfile(m)) for m in sorted(methods)]
        needed += [(f"{m}_table", c.table(m)) for m in sorted(methods) if c.table(m)]
        for name, path in needed:
            if not os.path.isfile(path):
                raise SweepError(f"--{name}={path}: no such file")
        if c.data_dir and not os.path.isdir(c.data_dir):
            raise SweepError(f"--data_dir={c.data_dir}: no such directory")
        if not (c.method_list() or c.drawn_method_list() or c.peer_list()):
            raise SweepError("nothing to sweep: give --methods, --random with "
                             "--random_methods, or --peers")
        missing = [m for m in c.random_method_list() if m not in c.method_list()]
        for flag, on, off in (("--random_band", c.random and c.random_band,
                               "--random_band=0"),
                              ("--random_near", c.random_near, "--random_near=0")):
            if on and missing:
                raise SweepError(f"{flag} draws random {missing} networks around the "
                                 "searched ones of the same method, and there is no "
                                 f"search of {missing}: add them to --methods or pass "
                                 f"{off}")
        names = {p["name"] for p in self.points()}
        unknown = [n for n in c.seed_point_list() if n not in names]
        if unknown:
            raise SweepError(f"--seed_points: no point named {unknown} in this sweep; its "
                             f"points are {sorted(names)}")
        if c.seed_point_list() and not c.seed_list():
            raise SweepError("--seed_points names the points trained again with "
                             "--train_seeds, which is empty: give the seeds, e.g. "
                             "--train_seeds=1,2")
        if c.seed_list():
            from tf_nas_seg.train.train_config import TrainConfig

            first = parse_command_config(TrainConfig, [f"--flagfile={c.train_flagfile}"]
                                         + shlex.split(c.train_args), "training").seed
            if first in c.seed_list():
                raise SweepError(f"--train_seeds={c.train_seeds} repeats the seed of the "
                                 f"first trainings ({first}, from --train_flagfile and "
                                 "--train_args): the same training twice would count as "
                                 "two; give other seeds")

    def _data_args(self):
        return [f"--data_dir={self.config.data_dir}"] if self.config.data_dir else []

    def search_argv(self, method):
        """The flags every search of `method` gets (before cost, lambda and run dir)."""
        return ([f"--flagfile={self.config.flagfile(method)}"] + self._data_args()
                + shlex.split(self.config.search_args)
                + shlex.split(self.config.method_search_args(method)))

    def search_config(self, method):
        from tf_nas_seg.search.search_config import SearchConfig

        return parse_command_config(SearchConfig, self.search_argv(method) + [
            f"--method={method}"], f"{method} search")

    def resolution(self):
        """(height, width) every network is timed at."""
        c = self.config
        if c.size:
            from tf_nas_seg.benchmark.benchmark_runner import parse_resolutions

            return parse_resolutions(c.size)[0]
        sizes = set()
        for method in c.method_list() or c.random_method_list():
            sc = self.search_config(method)
            sizes.add((sc.target_height, sc.target_width))
        if len(sizes) != 1 or 0 in next(iter(sizes)):
            raise SweepError(f"the searches' --target_height x --target_width are {sizes}; "
                             "set --size=HEIGHTxWIDTH, the size the networks are "
                             "timed at")
        return next(iter(sizes))

    # Paths ----------------------------------------------------------------------------
    def points(self):
        """Every point of the sweep, in the order they are trained."""
        c = self.config
        points = []
        unit = {"latency": " ms", "macs": " GMACs", "params": " M params"}[c.cost]
        for method in c.method_list():
            # budgets (--cost_form=budget) and targets held from both sides (target)
            for form, prefix, targets in (("budget", "target", c.target_list(method)),
                                          ("target", "exact", c.exact_target_list(method))):
                for target in targets:
                    name = f"{method}_{prefix}{target:g}"
                    points.append({"name": name, "kind": "searched", "method": method,
                                   "lambda": c.budget_lambda, "target": target,
                                   "unit": unit, "form": form,
                                   "dir": os.path.join(self.dir, "points", name)})
            by_target = c.target_list(method) or c.exact_target_list(method)
            for lam in [] if by_target else c.lambda_list(method):
                name = f"{method}_lambda{lam:g}"
                points.append({"name": name, "kind": "searched", "method": method,
                               "lambda": lam, "dir": os.path.join(self.dir, "points", name)})
        for peer, width in c.peer_list():
            name = f"peer_{peer}" if width == 1.0 else f"peer_{peer}_w{width:g}"
            points.append({"name": name, "kind": "peer", "peer": peer, "width": width,
                           "dir": os.path.join(self.dir, "points", name)})
        for method in c.drawn_method_list():
            for group, count in (("", c.random), ("near_", c.random_near)):
                for i in range(count):
                    name = f"random_{method}_{group}{i:02d}"
                    points.append({"name": name, "kind": "random", "method": method,
                                   "index": i, "group": group.rstrip("_"),
                                   "dir": os.path.join(self.dir, "points", name)})
        seeded = set(c.seed_point_list())
        for p in points:
            p["label"] = label_of(p)
            p["train_dir"] = os.path.join(p["dir"], "train")
            # the same network trained again with other seeds (--train_seeds)
            p["seed_dirs"] = {seed: os.path.join(p["dir"], f"train_seed{seed}")
                              for seed in c.seed_list()
                              if not seeded or p["name"] in seeded}
            if p["kind"] == "searched":
                p["search_dir"] = os.path.join(p["dir"], "search")
                p["genotype"] = os.path.join(p["search_dir"], "genotype.json")
            elif p["kind"] == "random":
                p["genotype"] = os.path.join(p["dir"], "genotype.json")
        return points

    def table_path(self, method):
        given = self.config.table(method)
        return given or os.path.join(self.dir, "tables", f"{method}.json")

    # Children -------------------------------------------------------------------------
    def _forward(self, signum, frame):
        del frame
        self._signal = signum
        if self._child is not None and self._child.poll() is None:
            self._child.send_signal(signum)

    def run_child(self, module, argv, log_path, what):
        """Runs `python -m module argv`, teeing its output to `log_path` and stderr."""
        command = [self.python, "-m", module] + list(argv)
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        _say(f"{what}: {' '.join(shlex.quote(a) for a in command)}")
        _say(f"  log: {log_path}")
        path = os.pathsep.join(p for p in (REPO_ROOT, os.environ.get("PYTHONPATH")) if p)
        env = {**os.environ, "PYTHONPATH": path,
               "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        start = time.perf_counter()
        with open(log_path, "ab") as log:
            log.write(f"\n$ {' '.join(shlex.quote(a) for a in command)}\n".encode())
            log.flush()
            self._child = subprocess.Popen(command, stdout=subprocess.PIPE,
                                           stderr=subprocess.STDOUT, env=env)
            try:
                while True:
                    chunk = os.read(self._child.stdout.fileno(), 65536)
                    if not chunk:
                        break
                    log.write(chunk)
                    log.flush()
                    sys.stderr.buffer.write(chunk)
                    sys.stderr.flush()
                code = self._child.wait()
            finally:
                if self._child.poll() is None:  # the sweep itself failed: stop the child
                    self._child.terminate()
                    self._child.wait()
                self._child = None
        seconds = time.perf_counter() - start
        if code == INTERRUPTED or self._signal is not None:
            raise SweepInterrupted(f"{what} stopped (exit {code}) after checkpointing")
        if code != 0:
            raise SweepError(f"{what} failed with exit status {code}; its output is in "
                             f"{log_path}. Fix the cause and rerun the same command: "
                             "finished points are kept")
        return seconds

    def _check_flagfiles(self):
        """The flagfiles may move between runs of a sweep, not change: their contents'
        hashes are kept in flagfiles.json and compared on every resumption."""
        import hashlib

        c = self.config
        current = {}
        for name in ("cas_flagfile", "autortnet_flagfile", "train_flagfile"):
            path = getattr(c, name)
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    current[name] = hashlib.sha256(f.read()).hexdigest()
        path = os.path.join(self.dir, "flagfiles.json")
        saved = _read_json(path)
        if saved is not None:
            changed = sorted(k for k in saved if k in current and saved[k] != current[k])
            if changed:
                raise SweepError(
                    f"{self.dir} was started with other contents of {', '.join(changed)} "
                    f"({', '.join(getattr(c, k) for k in changed)} changed since); restore "
                    "them, or start a new --run_dir")
            current = {**saved, **current}
        write_json_atomic(path, current)

    # Stages ---------------------------------------------------------------------------
    def stage_tables(self):
        c = self.config
        if c.cost != "latency":
            return
        methods = set(c.method_list()) | set(c.drawn_method_list())
        for method in sorted(methods):
            if c.table(method):
                continue
            table = self.table_path(method)
            done = table + ".done"
            if os.path.exists(done):
                continue
            # the search's flags less those a table refuses (data, learning rates, ...)
            argv = (table_argv(self.search_argv(method)) + [f"--method={method}"]
                    + shlex.split(c.table_args) + [f"--table={table}"])
            log = os.path.join(self.dir, "tables", f"{method}.log")
            self.run_child("tf_nas_seg.cli.latency_table", argv + ["--mode=build"], log,
                           f"latency table ({method}): build")
            if c.calibrate_tables:
                self.run_child("tf_nas_seg.cli.latency_table", argv + ["--mode=calibrate"],
                               log, f"latency table ({method}): calibrate")
            with open(done, "w", encoding="utf-8") as f:
                f.write(time.strftime("%Y-%m-%dT%H:%M:%S\n"))

    def stage_searches(self, only=None):
        c = self.config
        for p in self.points():
            if p["kind"] != "searched" or (only is not None and p["name"] != only):
                continue
            if _completed(os.path.join(p["search_dir"], "search_summary.json")):
                continue
            argv = self.search_argv(p["method"]) + [
                f"--method={p['method']}", f"--cost={c.cost}", f"--cost_lambda={p['lambda']}",
                f"--run_dir={p['search_dir']}"]
            if p.get("target") is not None:
                argv += [f"--cost_form={p.get('form', 'budget')}",
                         f"--cost_target={p['target']:g}"]
            if c.cost == "latency":
                argv.append(f"--latency_table={self.table_path(p['method'])}")
            self.run_child("tf_nas_seg.cli.search", argv,
                           os.path.join(p["dir"], "search.log"), f"search {p['label']}")
            self.write_results()

    def _random_space(self, method):
        """(space, table or None) the random networks of `method` are drawn from."""
        from tf_nas_seg.sweep.random_archs import without_multiscale

        search = self.search_config(method)
        if self.config.cost == "latency":
            from tf_nas_seg.latency.table import LatencyTable

            table = LatencyTable.load(self.table_path(method))
            space = dict(table.meta["space"])
        else:
            from tf_nas_seg.search.latency_space import space_from_config

            table, space = None, space_from_config(search, multiscale=False)
        if method == "cas" and search.stage == "backbone":
            space = without_multiscale(space)  # as the searched backbones: no MS cell
        return space, table

    def _band_points(self, method, names, flag):
        """The searched points of `method` named in `names` (comma-separated; empty: all
        of them) whose predicted latencies set a band of random networks."""
        searched = [p for p in self.points() if p["kind"] == "searched"
                    and p["method"] == method]
        named = split_list(names)
        if not named:
            return searched
        known = {p["name"] for p in self.points() if p["kind"] == "searched"}
        unknown = sorted(set(named) - known)
        if unknown:
            raise SweepError(f"{flag} names {unknown}, which are not searched "
                             f"points of this sweep; choose from {sorted(known)}")
        return [p for p in searched if p["name"] in named]

    def stage_random(self):
        c = self.config
        for method in c.drawn_method_list():
            # the wide band (--random, --random_band) and the near one (--random_near):
            # each group has its own samples file and its own stream of draws
            if c.random:
                self._draw_random(
                    method, "", c.random, c.random_band,
                    self._band_points(method, c.random_band_from, "--random_band_from")
                    if c.random_band else [], stream=7919, flag="--random")
            if c.random_near:
                near = self._band_points(method, c.random_near_from, "--random_near_from")
                if not near:
                    raise SweepError(f"--random_near draws random {method} networks near "
                                     f"searched {method} networks, and --random_near_from="
                                     f"{c.random_near_from!r} names none: name searched "
                                     f"points of {method}, or leave it empty for all")
                self._draw_random(method, "near_", c.random_near, c.random_near_band, near,
                                  stream=7920, flag="--random_near")

    def _draw_random(self, method, group, count, fraction, in_band, stream, flag):
        """Draws (once) `count` random `method` networks predicted within `fraction`
        around the latencies of the searched points `in_band` (no band when empty) and
        writes their genotypes to points/random_<method>_<group>NN/; `flag` ("--random"
        or "--random_near") names the group's settings in errors."""
        from tf_nas_seg.sweep.random_archs import predict_ms, sample_random_archs

        c = self.config
        path = os.path.join(self.dir, "points", f"random_{method}_{group}samples.json")
        stored = _read_json(path)
        band_points = sorted(p["name"] for p in in_band)
        if stored is not None and stored.get("band_points", []) != band_points:
            raise SweepError(
                f"the random {method} networks in {path} were drawn in the latency band "
                f"of the searches {stored.get('band_points')}, and the sweep now has "
                f"{band_points}: delete {path} and the random_{method}_{group}* points that "
                f"have not been trained to draw them again, or keep the old "
                f"{flag}{'_from' if group else '_band_from'}")
        if stored is not None and stored.get("band") and stored["band"][2] != fraction:
            raise SweepError(
                f"the random {method} networks in {path} were drawn within "
                f"{stored['band'][2]:g} of the searched latencies, and the sweep now asks "
                f"for {fraction:g}: keep the old {flag}_band, "
                "or delete the file and the untrained points to draw them again")
        if stored is not None and len(stored["archs"]) >= count:
            archs = stored["archs"][:count]
        else:
            space, table = self._random_space(method)
            band, searched = None, []
            if in_band:
                searched = [predict_ms(table, space, Genotype.load(p["genotype"]))
                            for p in in_band]
                band = (min(searched), max(searched), fraction)
            sampled = sample_random_archs(space, count, c.random_seed, table=table,
                                          band=band, stream=stream)
            archs = [a.to_json() for a in sampled]
            if stored is not None and archs[:len(stored["archs"])] != stored["archs"]:
                raise SweepError(f"{path} holds other random architectures than this "
                                 "sweep's settings draw; use a new --run_dir")
            write_json_atomic(path, {
                "method": method, "seed": c.random_seed, "band": band,
                "band_points": band_points, "stream": stream,
                "searched_predicted_ms": searched, "space": space, "archs": archs})
            _say(f"drew {len(archs)} random {method} {group.rstrip('_') or 'band'} "
                 "architectures" + (f" predicted within {band[0] * (1 - band[2]):.2f}-"
                                    f"{band[1] * (1 + band[2]):.2f} ms" if band else ""))
        for i, arch in enumerate(archs):
            genotype_path = os.path.join(self.dir, "points", f"random_{method}_{group}{i:02d}",
                                         "genotype.json")
            if not os.path.exists(genotype_path):
                Genotype.from_json(arch["genotype"]).save(genotype_path)

    def train_argv(self, point, seed=None):
        """bin/train's flags for `point` (the flagfile's seed, or `seed` into its
        train_seedS/)."""
        c = self.config
        if point["kind"] == "peer":
            network = [f"--peer={point['peer']}", f"--width_multiplier={point['width']:g}"]
        else:
            network = [f"--genotype={point['genotype']}"]
        run_dir = point["train_dir"] if seed is None else point["seed_dirs"][seed]
        return ([f"--flagfile={c.train_flagfile}"] + self._data_args()
                + shlex.split(c.train_args) + network + [f"--run_dir={run_dir}"]
                + ([] if seed is None else [f"--seed={seed}"]))

    def stage_train(self, only=None):
        for p in self.points():
            if only is not None and p["name"] != only:
                continue
            if _completed(os.path.join(p["train_dir"], "train_summary.json")):
                continue
            self.run_child("tf_nas_seg.cli.train", self.train_argv(p),
                           os.path.join(p["dir"], "train.log"), f"train {p['label']}")
            self.write_results()
        if only is None:
            self._train_seeds()

    def _train_seeds(self):
        """--train_seeds: one round over the chosen points per seed, so that each round
        adds a training to every point before the next begins."""
        for seed in self.config.seed_list():
            for p in self.points():
                run_dir = p["seed_dirs"].get(seed)
                if run_dir is None or _completed(os.path.join(run_dir, "train_summary.json")):
                    continue
                self.run_child("tf_nas_seg.cli.train", self.train_argv(p, seed),
                               os.path.join(p["dir"], f"train_seed{seed}.log"),
                               f"train {p['label']} with seed {seed}")
                self.write_results()

    def _bench_models(self):
        return [os.path.join(p["train_dir"], "model.keras") for p in self.points()]

    def stage_bench(self):
        c = self.config
        out = os.path.join(self.dir, "bench", "bench.json")
        models = self._bench_models()
        h, w = self.resolution()
        settings = {"models": models, "resolution": [h, w], "runs": c.bench_runs,
                    "warmup": c.bench_warmup, "threads": c.threads}
        existing = _read_json(out)
        if existing is not None and existing.get("sweep_settings") == settings:
            return
        argv = [f"--compare={','.join(models)}", f"--sizes={h}x{w}",
                f"--runs={c.bench_runs}", f"--warmup={c.bench_warmup}",
                f"--threads={c.threads}", f"--out={out}",
                f"--markdown={os.path.join(self.dir, 'bench', 'bench.md')}"]
        self.run_child("tf_nas_seg.cli.benchmark", argv,
                       os.path.join(self.dir, "bench", "bench.log"),
                       f"benchmark of {len(models)} networks at {h}x{w}")
        report = _read_json(out)
        report["sweep_settings"] = settings
        write_json_atomic(out, report)

    def _search_and_train_each(self):
        """--order=points: each searched network is trained right after its search."""
        for p in self.points():
            if p["kind"] == "searched":
                self.stage_searches(only=p["name"])
                if self._signal is not None:
                    raise SweepInterrupted(f"signal {self._signal}")
                self.stage_train(only=p["name"])
                if self._signal is not None:
                    raise SweepInterrupted(f"signal {self._signal}")

    # Results --------------------------------------------------------------------------
    def collect(self):
        """Every point with what is known of it so far (see results.collect_point)."""
        from tf_nas_seg.sweep.results import collect_point

        bench = _read_json(os.path.join(self.dir, "bench", "bench.json"))
        by_model = {}
        if bench is not None:
            by_model = {e["model"]: e for e in bench.get("results", [])}
        tables = {}
        if self.config.cost == "latency":
            for method in set(self.config.method_list()) | set(
                    self.config.drawn_method_list()):
                if os.path.exists(self.table_path(method)):
                    tables[method] = self._random_space(method)
        return [collect_point(p, by_model.get(os.path.join(p["train_dir"], "model.keras")),
                              tables.get(p.get("method"))) for p in self.points()], bench

    def write_results(self):
        from tf_nas_seg.sweep.results import write_results

        points, bench = self.collect()
        return write_results(self.dir, points, bench, self.config.to_json())

    # Main -----------------------------------------------------------------------------
    def run(self):
        """Runs (or resumes) the sweep; returns the results dict (status 'completed',
        'interrupted' or 'stopped')."""
        from tf_nas_seg.utils.run_state import RunLock, check_or_write_config

        # RunLock creates the directory, after checking that its disk is writable
        with RunLock(self.dir, "bin/sweep", SweepError,
                     min_free_mib=self.config.min_free_mib):
            return self._run_locked(check_or_write_config)

    def _run_locked(self, check_or_write_config):
        previous = {s: signal.signal(s, self._forward) for s in (signal.SIGINT,
                                                                 signal.SIGTERM)}
        try:
            check_or_write_config(self.dir, self.config.to_json(), RESUMABLE_CHANGES,
                                  SweepError,
                                  defaults=SweepConfig().to_json(),
                                  renamed=SweepConfig.RENAMED)
            self._check_flagfiles()
            for stage in ("tables", "searches", "random", "train", "bench"):
                if stage == "searches" and self.config.order == "points":
                    self._search_and_train_each()
                getattr(self, f"stage_{stage}")()
                if self._signal is not None:
                    raise SweepInterrupted(f"signal {self._signal}")
                if self.config.stop_after == stage:
                    results = self.write_results()
                    return {**results, "status": "stopped", "stopped_after": stage}
            return {**self.write_results(), "status": "completed"}
        except SweepInterrupted as e:
            _say(f"interrupted ({e}); rerun the same command to resume")
            return {**self.write_results(), "status": "interrupted"}
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


def run_sweep(config):
    """Runs or resumes the sweep `config` describes; returns its results dict."""
    return SweepRunner(config).run()
