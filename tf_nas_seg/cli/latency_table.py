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

from tf_nas_seg.cli.common import begin, user_error
from tf_nas_seg.cli.common import parse_flags as common_parse_flags
from tf_nas_seg.errors import ConfigError, UserError
from tf_nas_seg.latency.config import LatencyTableConfig
from tf_nas_seg.search.search_config import search_only_settings
from tf_nas_seg.search.latency_space import space_from_config
from tf_nas_seg.utils.flag_fields import config_from_flags, define_flags

define_flags(LatencyTableConfig)

# Settings of a search flagfile that a latency table does not depend on (learning rates,
# data paths, the cost, ...): accepted in a --flagfile and ignored, refused on the
# command line, and absent from --help.
SEARCH_ONLY = search_only_settings()


def parse_flags(argv):
    """absl's flag parsing, tolerating a search flagfile's search-only settings."""
    for arg in argv[1:]:
        if not arg.startswith("--") or arg.startswith("--flagfile"):
            continue
        name = arg[2:].split("=", 1)[0]
        if name.startswith("no") and name[2:] in SEARCH_ONLY:
            name = name[2:]
        if name in SEARCH_ONLY:
            print(f"error: --{name} is a bin/search setting that latency tables do not "
                  "depend on; drop it (in a search --flagfile it is accepted and "
                  "ignored)", file=sys.stderr)
            sys.exit(2)
    # absl's parser, as every command's: an unknown flag (or a flagfile that is not
    # UTF-8) is the one-line 'FATAL Flags parsing error', exit 1 (not a traceback)
    return common_parse_flags(list(argv) + [f"--undefok={','.join(SEARCH_ONLY)}"])

def check_flags(config):
    """Checks what can be checked before TensorFlow starts; ConfigError naming the fix."""
    if not config.table:
        raise ConfigError(f"--table is required: the latency table JSON that --mode="
                         f"{config.mode} {'reads' if config.mode == 'validate' else 'writes to'}"
                         " (e.g. --table=tables/camvid_360x480_cpu.json)")
    if config.mode in ("validate", "calibrate"):
        if config.mode == "validate" and not config.out:
            raise ConfigError("--mode=validate needs --out, the report JSON to write (the "
                             "scatter plot goes next to it)")
        return
    if not config.target_height or not config.target_width:
        raise ConfigError("--target_height and --target_width are required: the input "
                         "resolution the searched network will run at (e.g. 360 and 480 "
                         "for CamVid, 768 and 1536 for Cityscapes)")
    if config.method not in ("cas", "autortnet", "darts"):
        raise ConfigError(f"--method={config.method}: latency tables are built for the "
                         "search methods with a latency profile (cas, autortnet)")
    if config.mode == "network" and config.method == "autortnet":
        raise ConfigError("--mode=network measures CAS's whole-network costs c'_o "
                         "(--cost_mode=cas); AutoRTNet prices each op where it sits: "
                         "use --mode=build")


def _timers(config, device):
    from tf_nas_seg.latency.timer import CompiledTimer

    layer = CompiledTimer(device, warmup=config.warmup, min_repeats=config.min_repeats,
                          max_repeats=config.max_repeats, min_seconds=config.min_seconds)
    network = CompiledTimer(device, warmup=config.warmup,
                            min_repeats=config.network_repeats,
                            max_repeats=max(config.network_repeats, config.max_repeats),
                            min_seconds=config.network_seconds)
    return layer, network


def run(config):
    """Runs one mode; returns the JSON-able result printed on stdout."""
    check_flags(config)
    import tensorflow as tf

    from tf_nas_seg.latency.timer import configure_threads, resolve_device
    from tf_nas_seg.latency.errors import TimingError
    from tf_nas_seg.latency.builder import build_networks, build_table, open_table
    from tf_nas_seg.latency.validation import calibrate_table, validate_table
    from tf_nas_seg.latency.table import LatencyTable

    start = time.perf_counter()
    if config.mode in ("validate", "calibrate"):
        table = LatencyTable.load(config.table)
        settings = table.settings()
        intra, inter = configure_threads(settings["intra_op_threads"],
                                         settings["inter_op_threads"])
        device, name, _ = resolve_device(settings["device_type"].lower())
        if name != settings["device"] or tf.__version__ != settings["tensorflow"]:
            raise TimingError(
                f"{config.table} was measured on {settings['device']} with TensorFlow "
                f"{settings['tensorflow']}; this is {name} with TensorFlow "
                f"{tf.__version__}: validate on the machine the table was built on")
        _, network_timer = _timers(config, device)
        if config.mode == "calibrate":
            calibration = calibrate_table(table, network_timer, settings["batch"],
                                          config.calibration_archs, config.seed,
                                          passes=config.network_passes)
            return {"table": config.table, "calibration": calibration,
                    "wall_seconds": round(time.perf_counter() - start, 1)}
        if config.network_processes > 1 and not config.max_rounds:
            _validate_in_workers(config)
        report = validate_table(table, network_timer, settings["batch"],
                                config.num_archs, config.seed, config.out,
                                passes=config.network_passes,
                                session_calibration_archs=config.session_calibration_archs,
                                max_rounds=config.max_rounds)
        if report["status"] != "complete":
            return {"report": config.out, "status": report["status"],
                    "rounds_done": report["timing"]["passes_done"],
                    "rounds": config.network_passes}
        return {"report": config.out, "plot": report["plot"], **report["summary"],
                "wall_seconds": report["wall_seconds"]}
    space = space_from_config(config)
    from tf_nas_seg.latency.profiles import get_profile

    get_profile(space["method"]).check_space(space)
    intra, inter = configure_threads(config.threads, config.inter_op_threads)
    device, name, device_type = resolve_device(config.device)
    settings = {"device": name, "device_type": device_type,
                "tensorflow": tf.__version__, "dtype": "float32",
                "batch": config.latency_batch, "intra_op_threads": intra,
                "inter_op_threads": inter, "layer_repeats": config.layer_repeats,
                "space": space}
    table = open_table(config.table, settings)
    layer_timer, network_timer = _timers(config, device)
    if config.mode == "build":
        table, stats = build_table(table, layer_timer, config.latency_batch)
        result = {"table": config.table, "entries": len(table.entries),
                  "measured_now": stats["measured"], "already_there": stats["skipped"],
                  "build_seconds_total": stats["seconds"]}
    else:
        table = build_networks(table, network_timer, config.latency_batch)
        result = {"table": config.table, "entries": len(table.entries)}
    result["wall_seconds"] = round(time.perf_counter() - start, 1)
    result["device"] = name
    return result


def _validate_in_workers(config):
    """Runs the validation's timing rounds in `network_processes` fresh processes.

    Each worker is this command with --max_rounds set: it traces every network, times
    its share of the rounds and saves them in the report, which the next worker resumes.
    """
    import math
    import subprocess

    share = math.ceil(config.network_passes / config.network_processes)
    command = [sys.executable, "-m", "tf_nas_seg.cli.latency_table", *sys.argv[1:],
               f"--max_rounds={share}", "--network_processes=1"]
    for worker in range(math.ceil(config.network_passes / share)):
        print(f"timing process {worker + 1}: {share} rounds", file=sys.stderr, flush=True)
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
        if done.returncode != 0:
            raise ConfigError(f"timing process {worker + 1} failed (exit {done.returncode}); "
                             "rerun the same command to resume from the saved rounds")


def _run_locked(config):
    """`run`, holding a lock on the file it writes (the table; validate: the report), so
    that two processes never write one table. A validation in worker processes leaves
    the lock to each worker in turn."""
    from tf_nas_seg.latency.errors import TimingError
    from tf_nas_seg.utils.run_state import RunLock

    path = config.out if config.mode == "validate" else config.table
    if not path or (config.mode == "validate" and config.network_processes > 1
                    and not config.max_rounds):
        return run(config)
    with RunLock(path, f"bin/latency_table --mode={config.mode}", TimingError,
                 is_file=True, min_free_mib=config.min_free_mib):
        return run(config)


def main(argv):
    begin(argv, logging.WARNING)
    from tf_nas_seg.latency.errors import TimingError

    try:
        config = config_from_flags(LatencyTableConfig)
        check_flags(config)  # before TensorFlow starts: bad input fails fast
        result = _run_locked(config)
    except (TimingError, UserError) as e:
        return user_error(e)
    except KeyboardInterrupt:
        print("interrupted; what was measured is saved: rerun the same command to "
              "resume", file=sys.stderr)
        return 3
    print(json.dumps(result, indent=2))
    return 0


def run_cli():
    """Entry point of bin/latency_table and the `tf-nas-seg-latency-table` script."""
    app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
    run_cli()
