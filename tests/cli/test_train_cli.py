"""bin/train as a user runs it: help, bad input, a tiny run, and resume after a stop."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
TINY = ["--peer=fast_scnn", "--width_multiplier=0.25", "--synthetic_images=4",
        "--synthetic_val_images=2", "--synthetic_height=32", "--synthetic_width=48",
        "--synthetic_classes=3", "--batch_size=2", "--iterations=4", "--overlays=1"]


def _train(*args, timeout=600):
    return subprocess.run([sys.executable, str(ROOT / "bin" / "train"), *args],
                          capture_output=True, text=True, timeout=timeout, env=ENV)


def test_help_and_bad_input():
    out = _train("--helpfull").stdout
    for flag in ("--genotype", "--peer", "--ohem_threshold", "--precision", "--run_dir"):
        assert flag in out
    assert "online bootstrapped cross-entropy" in out
    result = _train("--peer=fast_scnn", "--genotype=g.json", "--run_dir=/tmp/x")
    assert result.returncode == 2 and "exactly one of --genotype" in result.stderr


@pytest.mark.slow  # two process start-ups; tests/train covers stop and resume in-process
def test_tiny_training_stops_and_resumes_from_the_command_line(tmp_path):
    run_dir = tmp_path / "run"
    stopped = _train(*TINY, f"--run_dir={run_dir}", "--stop_after_iterations=2")
    assert stopped.returncode == 3 and "rerun the same command" in stopped.stderr
    done = _train(*TINY, f"--run_dir={run_dir}")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout[done.stdout.index("{"):])
    assert Path(report["model"]).exists() and 0.0 <= report["val_miou"] <= 1.0
    summary = json.loads((run_dir / "train_summary.json").read_text())
    assert summary["iterations"] == 4 and summary["peer"] == "fast_scnn"
