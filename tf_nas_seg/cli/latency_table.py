"""`bin/latency_table`: build, extend or validate a latency lookup table.

The search space comes from the search flags, so the flagfile of a search builds the
table that search needs:

    bin/latency_table --flagfile=configs/camvid.cfg --mode=build \\
        --table=tables/camvid_360x480_cpu.json
    bin/latency_table --flagfile=configs/camvid.cfg --mode=network \\
        --table=tables/camvid_360x480_cpu.json        # CAS c'_o - c'_id (--cost_mode=cas)
    bin/latency_table --mode=calibrate --table=tables/camvid_360x480_cpu.json
    bin/latency_table --mode=validate --table=tables/camvid_360x480_cpu.json \\
        --num_archs=20 --out=reports/camvid_360x480_cpu.json
    bin/search --flagfile=configs/camvid.cfg --cost=latency \\
        --latency_table=tables/camvid_360x480_cpu.json --run_dir=runs/camvid_latency

AutoRTNet the same way with its flagfile (`--method=autortnet`: the hyper-cells at every
depth, the aggregation cell, the fixed multi-scale module; no --mode=network):

    bin/latency_table --flagfile=configs/camvid_autortnet.cfg --mode=build \\
        --table=tables/camvid_autortnet_360x480_cpu.json
"""

import json
import sys
import time

from absl import app, logging

from tf_nas_seg.latency.config import LatencyConfig
from tf_nas_seg.search.latency_space import space_from_configs
from tf_nas_seg.search.search_config import SearchConfig
from tf_nas_seg.utils.flag_fields import config_from_flags, define_flags
from tf_nas_seg.errors import ConfigError, UserError

define_flags(SearchConfig)
define_flags(LatencyConfig)

def check_flags(search, latency):
    """Checks what can be checked before TensorFlow starts; ValueError naming the fix."""
    if not latency.table:
        raise ConfigError(f"--table is required: the latency table JSON that --mode="
                         f"{latency.mode} {'reads' if latency.mode == 'validate' else 'writes to'}"
                         " (e.g. --table=tables/camvid_360x480_cpu.json)")
    if latency.mode in ("validate", "calibrate"):
        if latency.mode == "validate" and not latency.out:
            raise ConfigError("--mode=validate needs --out, the report JSON to write (the "
                             "scatter plot goes next to it)")
        return
    if not search.target_height or not search.target_width:
        raise ConfigError("--target_height and --target_width are required: the input "
                         "resolution the searched network will run at (e.g. 360 and 480 "
                         "for CamVid, 768 and 1536 for Cityscapes)")
    if search.method not in ("cas", "autortnet"):
        raise ConfigError(f"--method={search.method}: latency tables are built for the "
                         "search methods with a latency profile (cas, autortnet)")
    if latency.mode == "network" and search.method != "cas":
        raise ConfigError("--mode=network measures CAS's whole-network costs c'_o "
                         "(--cost_mode=cas); AutoRTNet prices each op where it sits: "
                         "use --mode=build")


def _timers(latency, device):
    from tf_nas_seg.latency.timer import CompiledTimer

    layer = CompiledTimer(device, warmup=latency.warmup, min_repeats=latency.min_repeats,
                          max_repeats=latency.max_repeats, min_seconds=latency.min_seconds)
    network = CompiledTimer(device, warmup=latency.warmup,
                            min_repeats=latency.network_repeats,
                            max_repeats=max(latency.network_repeats, latency.max_repeats),
                            min_seconds=latency.network_seconds)
    return layer, network


def run(search, latency):
    """Runs one mode; returns the JSON-able result printed on stdout."""
    check_flags(search, latency)
    import tensorflow as tf

    from tf_nas_seg.latency.timer import configure_threads, resolve_device
    from tf_nas_seg.latency.errors import TimingError
    from tf_nas_seg.latency.builder import build_networks, build_table, open_table
    from tf_nas_seg.latency.validation import calibrate_table, validate_table
    from tf_nas_seg.latency.table import LatencyTable

    start = time.perf_counter()
    if latency.mode in ("validate", "calibrate"):
        table = LatencyTable.load(latency.table)
        settings = table.settings()
        intra, inter = configure_threads(settings["intra_op_threads"],
                                         settings["inter_op_threads"])
        device, name, _ = resolve_device(settings["device_type"].lower())
        if name != settings["device"] or tf.__version__ != settings["tensorflow"]:
            raise TimingError(
                f"{latency.table} was measured on {settings['device']} with TensorFlow "
                f"{settings['tensorflow']}; this is {name} with TensorFlow "
                f"{tf.__version__}: validate on the machine the table was built on")
        _, network_timer = _timers(latency, device)
        if latency.mode == "calibrate":
            calibration = calibrate_table(table, network_timer, settings["batch"],
                                          latency.calibration_archs, search.seed,
                                          passes=latency.network_passes)
            return {"table": latency.table, "calibration": calibration,
                    "wall_seconds": round(time.perf_counter() - start, 1)}
        if latency.network_processes > 1 and not latency.max_rounds:
            _validate_in_workers(latency)
        report = validate_table(table, network_timer, settings["batch"],
                                latency.num_archs, search.seed, latency.out,
                                passes=latency.network_passes,
                                session_calibration_archs=latency.session_calibration_archs,
                                max_rounds=latency.max_rounds)
        if report["status"] != "complete":
            return {"report": latency.out, "status": report["status"],
                    "rounds_done": report["timing"]["passes_done"],
                    "rounds": latency.network_passes}
        return {"report": latency.out, "plot": report["plot"], **report["summary"],
                "wall_seconds": report["wall_seconds"]}
    space = space_from_configs(search, latency)
    from tf_nas_seg.latency.profiles import get_profile

    get_profile(space["method"]).check_space(space)
    intra, inter = configure_threads(search.threads, latency.inter_op_threads)
    device, name, device_type = resolve_device(latency.device)
    settings = {"device": name, "device_type": device_type,
                "tensorflow": tf.__version__, "dtype": "float32",
                "batch": latency.latency_batch, "intra_op_threads": intra,
                "inter_op_threads": inter, "layer_repeats": latency.layer_repeats,
                "space": space}
    table = open_table(latency.table, settings)
    layer_timer, network_timer = _timers(latency, device)
    if latency.mode == "build":
        table, stats = build_table(table, layer_timer, latency.latency_batch)
        result = {"table": latency.table, "entries": len(table.entries),
                  "measured_now": stats["measured"], "already_there": stats["skipped"],
                  "build_seconds_total": stats["seconds"]}
    else:
        table = build_networks(table, network_timer, latency.latency_batch)
        result = {"table": latency.table, "entries": len(table.entries)}
    result["wall_seconds"] = round(time.perf_counter() - start, 1)
    result["device"] = name
    return result


def _validate_in_workers(latency):
    """Runs the validation's timing rounds in `network_processes` fresh processes.

    Each worker is this command with --max_rounds set: it traces every network, times
    its share of the rounds and saves them in the report, which the next worker resumes.
    """
    import math
    import subprocess

    share = math.ceil(latency.network_passes / latency.network_processes)
    command = [sys.executable, "-m", "tf_nas_seg.cli.latency_table", *sys.argv[1:],
               f"--max_rounds={share}", "--network_processes=1"]
    for worker in range(math.ceil(latency.network_passes / share)):
        print(f"timing process {worker + 1}: {share} rounds", file=sys.stderr, flush=True)
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
        if done.returncode != 0:
            raise ConfigError(f"timing process {worker + 1} failed (exit {done.returncode}); "
                             "rerun the same command to resume from the saved rounds")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; every setting is a --flag "
                             "(see --helpfull)")
    logging.set_verbosity(logging.WARNING)
    from tf_nas_seg.latency.errors import TimingError

    try:
        search = config_from_flags(SearchConfig)
        latency = config_from_flags(LatencyConfig)
        check_flags(search, latency)  # before TensorFlow starts: bad input fails fast
        result = run(search, latency)
    except (TimingError, UserError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; what was measured is saved: rerun the same command to "
              "resume", file=sys.stderr)
        return 3
    print(json.dumps(result, indent=2))
    return 0


def run_cli():
    """Entry point of bin/latency_table and the `tf-nas-seg-latency-table` script."""
    app.run(main)


if __name__ == "__main__":
    run_cli()
