"""bin/search as a user runs it: help, bad input, and a tiny search end to end."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def _search(*args, timeout=600):
    return subprocess.run([sys.executable, str(ROOT / "bin" / "search"), *args],
                          capture_output=True, text=True, timeout=timeout, env=ENV)


def test_help_lists_every_setting_in_full_sentences():
    out = _search("--helpfull").stdout
    # absl lists boolean flags as --[no]name
    for flag in ("--cost_lambda", "--stage", "--run_dir", "--dataset", "--[no]second_order"):
        assert flag in out
    assert "Weight lambda of the cost term" in out


def test_bad_input_is_a_clear_error(tmp_path):
    result = _search("--run_dir=")
    assert result.returncode == 2 and "--run_dir is required" in result.stderr
    result = _search("--channels=-3", "--run_dir=/tmp/x")
    assert result.returncode != 0 and "channels" in result.stderr
    result = _search("--dataset=camvid", "--data_dir=/nonexistent/camvid",
                     f"--run_dir={tmp_path / 'missing'}")
    assert result.returncode == 2 and "/nonexistent/camvid" in result.stderr


def test_configs_parse_and_name_their_command():
    for cfg in sorted((ROOT / "configs").glob("*.cfg")):
        text = cfg.read_text()
        assert text.startswith("#"), cfg
        assert f"--flagfile=configs/{cfg.name}" in text, cfg
        assert any(f"bin/{tool} --flagfile" in text for tool in ("search", "train", "sweep")), cfg
        flags = [line for line in text.splitlines() if line.startswith("--")]
        assert flags, cfg


def test_tiny_search_from_the_command_line(tmp_path):
    run_dir = tmp_path / "run"
    result = _search("--synthetic_images=8", "--synthetic_height=32",
                     "--synthetic_width=32", "--synthetic_classes=3", "--layout=NR",
                     "--channels=4", "--stem_channels=8", "--steps=1", "--batch_size=4",
                     "--iterations=2", "--low_level_cell=0", f"--run_dir={run_dir}")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout[result.stdout.index("{"):])
    assert Path(report["genotype"]).exists() and report["derived_params"] > 0


@pytest.mark.slow  # two searches in two fresh processes (~50 s on 2 cores)
def test_same_seed_in_two_processes_gives_the_same_search(tmp_path):
    """Two fresh `bin/search` processes, same seed: the same genotype and bit-identical
    architecture logits and weights (determinism is on by default)."""
    import numpy as np  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    args = ("--synthetic_images=8", "--synthetic_height=32", "--synthetic_width=32",
            "--synthetic_classes=3", "--layout=NR", "--channels=4", "--stem_channels=8",
            "--steps=1", "--batch_size=4", "--iterations=4", "--low_level_cell=0",
            "--arch_lr=0.05", "--seed=3")
    states = []
    for name in ("a", "b"):
        result = _search(*args, f"--run_dir={tmp_path / name}")
        assert result.returncode == 0, result.stderr[-2000:]
        reader = tf.train.load_checkpoint(str(tmp_path / name / "checkpoints"))
        states.append({k: reader.get_tensor(k)
                       for k in reader.get_variable_to_shape_map()
                       if "elapsed" not in k and "save_counter" not in k})
    assert (tmp_path / "a" / "genotype.json").read_text() == \
        (tmp_path / "b" / "genotype.json").read_text()
    # variables are saved by position (state/v00000, ...), architecture logits first
    assert states[0].keys() == states[1].keys() and len(states[0]) > 20
    for key in states[0]:
        np.testing.assert_array_equal(states[0][key], states[1][key], err_msg=key)
