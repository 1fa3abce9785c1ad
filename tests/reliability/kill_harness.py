"""SIGKILL a long command at a chosen point, rerun it, and compare with a run never killed.

Shared by the SIGKILL tests (tests/reliability/test_kill_resume.py) and the full
fault-injection run (benchmarks/fault_injection.py). A kill point is "the k-th
checkpoint (or saved table chunk) is on disk, then `delay` seconds more": the command is
then somewhere in its next steps, in a checkpoint write, an evaluation or an epoch's
outputs. SIGKILL cannot be caught, so what it leaves is exactly what was on disk.

Commands run as `python bin/<tool> ...` in a fresh process (as a user runs them), with
this checkout first on the path; the process is killed by its own PID only.
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}

# Tiny commands on the bundled synthetic data: a few seconds of work after start-up.
# Search: 8 + 8 images, 2 iterations per epoch, 4 epochs, a checkpoint every iteration.
SEARCH_ARGS = ("--synthetic_images=16", "--synthetic_height=32", "--synthetic_width=32",
               "--synthetic_classes=4", "--layout=NR", "--channels=4", "--stem_channels=8",
               "--steps=2", "--low_level_cell=0", "--ms_channels=4", "--ms_steps=2",
               "--batch_size=4", "--iterations=8", "--cost=params", "--cost_lambda=0.1",
               "--arch_lr=0.02", "--checkpoint_every=1", "--seed=5")
# Training: 16 iterations of a quarter-width Fast-SCNN, an evaluation every 4.
TRAIN_ARGS = ("--peer=fast_scnn", "--width_multiplier=0.25", "--synthetic_images=8",
              "--synthetic_val_images=2", "--synthetic_height=32", "--synthetic_width=48",
              "--synthetic_classes=3", "--batch_size=2", "--iterations=16",
              "--checkpoint_every=1", "--eval_every=4", "--overlays=0", "--seed=5")
# Latency table of a one-node CAS space at 32x32 (> 24 layers: two saved chunks).
TABLE_ARGS = ("--mode=build", "--layout=NR", "--channels=4", "--stem_channels=8",
              "--steps=1", "--low_level_cell=0", "--ms_channels=4", "--ms_steps=1",
              "--synthetic_classes=3", "--target_height=32", "--target_width=32",
              "--warmup=0", "--min_repeats=2", "--max_repeats=2", "--min_seconds=0",
              "--network_repeats=2", "--network_seconds=0")
CALIBRATE_ARGS = ("--mode=calibrate", "--calibration_archs=4", "--network_passes=2",
                  "--warmup=0", "--network_repeats=2", "--network_seconds=0")
VALIDATE_ARGS = ("--mode=validate", "--num_archs=3", "--network_passes=3", "--warmup=0",
                 "--network_repeats=2", "--network_seconds=0")


def command(tool, *args):
    """The argv of `bin/<tool> args` run by this Python."""
    return [sys.executable, str(ROOT / "bin" / tool), *args]


def run(argv, timeout=900):
    """Runs a command to its end; CompletedProcess with text stdout/stderr."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=ENV,
                          check=False)


def checkpoint_step(run_dir):
    """Step of the newest checkpoint recorded in RUN_DIR/checkpoints, or 0."""
    path = Path(run_dir) / "checkpoints" / "checkpoint"
    try:
        match = re.search(r'^model_checkpoint_path: "ckpt-(\d+)"', path.read_text(), re.M)
    except OSError:
        return 0
    return int(match.group(1)) if match else 0


def table_entries(path):
    """Entries of the latency table at `path` ({} while there is none or it is partial)."""
    try:
        return json.loads(Path(path).read_text()).get("entries", {})
    except (OSError, ValueError):
        return {}


def kill_at(argv, ready, delay, timeout=900, poll=0.02):
    """Starts `argv`, waits until `ready(the end of its stderr so far)` is true, then
    `delay` s more, then SIGKILLs it.

    Returns:
        {"killed": bool, "returncode": the exit status (-9 when killed), "seconds": from
        start to the kill or exit, "log": the last lines of its stderr}. "killed" is False
        when the command ended (finished or failed) before the kill point.
    """
    with tempfile.TemporaryDirectory() as folder:
        log_path = os.path.join(folder, "stderr")
        start = time.monotonic()
        with open(log_path, "w") as err:
            process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=ENV)
        try:
            while process.poll() is None and not ready(_tail(log_path)):
                if time.monotonic() - start > timeout:
                    raise TimeoutError(f"{argv[1]} did not reach its kill point in "
                                       f"{timeout} s")
                time.sleep(poll)
            if process.poll() is None:
                time.sleep(delay)
            killed = process.poll() is None
            if killed:
                os.kill(process.pid, signal.SIGKILL)
            returncode = process.wait()
        finally:
            if process.poll() is None:  # a timeout: never leave it running
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
        log = _tail(log_path, 1 << 20).splitlines()[-15:]
    return {"killed": killed, "returncode": returncode,
            "seconds": round(time.monotonic() - start, 2), "log": log}


def _tail(path, size=4096):
    """The last `size` characters of the file at `path` (its own reader: the writer's
    file offset is not touched)."""
    with open(path, encoding="utf-8", errors="replace") as reader:
        reader.seek(max(0, os.path.getsize(path) - size))
        return reader.read()


def checkpoint_state(run_dir):
    """{key: array} of RUN_DIR's newest checkpoint, without the wall clock and counter."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(Path(run_dir) / "checkpoints"))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if not any(s in k for s in ("elapsed", "save_counter", "_CHECKPOINTABLE"))}


def _json(path):
    return json.loads(Path(path).read_text())


# Fields that are measurements of time (or where a run ran), not results.
_TIMING = {"first_step_seconds", "median_step_seconds", "wall_time_seconds", "model",
           "best_model", "genotype_path"}


def _without_timing(value):
    if isinstance(value, dict):
        return {k: _without_timing(v) for k, v in value.items() if k not in _TIMING}
    if isinstance(value, list):
        return [_without_timing(v) for v in value]
    return value


def compare_runs(kind, reference, resumed):
    """Differences between a run never killed and a killed-and-resumed one ([] if none).

    Search and training compare exactly (bit for bit): the checkpointed state (weights,
    architecture logits, BN statistics, optimizer slots, metric accumulators, best
    score), the history, the genotype and the summary less its timings. Both runs use
    the same seed on the same machine with deterministic kernels (the default), and a
    resumed run reads the same batches (a pure function of the step) from the same
    state, so nothing is left to differ. A latency table's entries are timings, which
    differ between any two builds: there the entries' keys and the table's settings
    must be equal (see `compare_tables`).
    """
    reference, resumed = Path(reference), Path(resumed)
    problems = []
    if kind == "table":
        return compare_tables(reference, resumed)
    a, b = checkpoint_state(reference), checkpoint_state(resumed)
    if a.keys() != b.keys():
        problems.append(f"checkpoint keys differ: {sorted(a.keys() ^ b.keys())[:5]}")
    for key in sorted(a.keys() & b.keys()):
        if a[key].shape != b[key].shape or not np.array_equal(a[key], b[key]):
            problems.append(f"checkpoint {key} differs")
    summary = "search_summary.json" if kind == "search" else "train_summary.json"
    files = ["history.json", summary] + (["genotype.json"] if kind == "search" else [])
    for name in files:
        x, y = _without_timing(_json(reference / name)), _without_timing(_json(resumed / name))
        if x != y:
            problems.append(f"{name} differs ({', '.join(_differences(x, y)[:4])})")
    return problems


def _differences(a, b, path=""):
    """Paths (".epochs", "[0].weight_loss") where two JSON values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b), key=str)
                for d in _differences(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path or 'top'}: {len(a)} vs {len(b)} items"]
        return [d for i, (x, y) in enumerate(zip(a, b))
                for d in _differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path or 'top'}: {a!r} vs {b!r}"[:120]]


def compare_tables(reference, resumed):
    """Differences in the keys and settings of two latency tables ([] if none)."""
    a, b = _json(reference), _json(resumed)
    problems = []
    if a["entries"].keys() != b["entries"].keys():
        problems.append(f"entries differ: {sorted(a['entries'].keys() ^ b['entries'].keys())}")
    for key in ("device", "device_type", "tensorflow", "dtype", "batch", "space",
                "layer_repeats", "intra_op_threads", "inter_op_threads"):
        if a.get(key) != b.get(key):
            problems.append(f"setting {key} differs")
    bad = [k for k, v in b["entries"].items() if not (isinstance(v, float) and v >= 0)]
    if bad:
        problems.append(f"entries not a latency: {bad[:3]}")
    return problems


def lost_entries(at_kill, resumed):
    """Entries measured before the kill that the resumed table lacks or changed."""
    return sorted(k for k, v in at_kill.items() if resumed.get(k) != v)
