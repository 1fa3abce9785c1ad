"""bin/latency_table as a user runs it: help, bad input, build -> search -> validate."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
TINY = ("--layout=NR", "--channels=4", "--stem_channels=8", "--steps=1",
        "--low_level_cell=0", "--ms_channels=4", "--ms_steps=1", "--synthetic_classes=3",
        "--target_height=32", "--target_width=32")
FAST = ("--warmup=0", "--min_repeats=2", "--max_repeats=2", "--min_seconds=0",
        "--network_repeats=2", "--network_seconds=0")


def _run(*args, timeout=600):
    return subprocess.run([sys.executable, str(ROOT / "bin" / "latency_table"), *args],
                          capture_output=True, text=True, timeout=timeout, env=ENV)


def test_help_lists_the_settings_in_full_sentences():
    out = _run("--helpfull").stdout
    for flag in ("--mode", "--table", "--num_archs", "--inter_op_threads", "--device",
                 "--target_height", "--[no]multiscale"):
        assert flag in out, flag
    assert "Intra-op threads: --threads." in out
    for search_only in ("--lr:", "--batch_size:", "--data_dir:", "--cost_lambda:"):
        assert search_only not in out, search_only  # only the flags the table uses


def test_a_search_flagfile_is_accepted_and_its_search_only_settings_ignored(tmp_path):
    flagfile = tmp_path / "search.cfg"
    flagfile.write_text("--lr=0.1\n--noflip\n--cost_lambda=0.5\n--mode=validate\n")
    result = _run(f"--flagfile={flagfile}", "--table=/tmp/x.json", timeout=60)
    assert result.returncode == 2 and "needs --out" in result.stderr, result.stderr[-2000:]


@pytest.mark.parametrize("args, message", [
    (("--mode=build",), "--table is required"),
    (("--mode=build", "--table=/tmp/x.json"), "--target_height and --target_width"),
    (("--mode=validate", "--table=/tmp/x.json"), "needs --out"),
    (("--mode=build", "--table=/tmp/x.json", "--min_repeats=5", "--max_repeats=2",
      "--target_height=8", "--target_width=8"), "max_repeats=2 is below"),
    (("--mode=build", "--lr=0.1"), "--lr is a bin/search setting"),
    (("--mode=build", "--noflip"), "--flip is a bin/search setting"),
])
def test_bad_input_is_a_clear_error_before_anything_runs(args, message):
    result = _run(*args, timeout=60)
    assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]


def test_out_of_bounds_flags_are_refused():
    result = _run("--mode=build", "--latency_batch=0", timeout=60)
    assert result.returncode != 0 and "latency_batch" in result.stderr
    result = _run("--mode=fast", timeout=60)
    assert result.returncode != 0 and "calibrate" in result.stderr  # lists the modes


@pytest.mark.slow
def test_build_resume_network_validate_and_search_end_to_end(tmp_path):
    table = tmp_path / "table.json"
    result = _run("--mode=build", f"--table={table}", *TINY, *FAST)
    assert result.returncode == 0, result.stderr[-3000:]
    built = json.loads(result.stdout)
    assert built["entries"] > 30 and "distinct layers in the space" in result.stderr
    again = json.loads(_run("--mode=build", f"--table={table}", *TINY, *FAST).stdout)
    assert again["measured_now"] == 0 and again["already_there"] == built["entries"]
    result = _run("--mode=network", f"--table={table}", *TINY, *FAST)
    assert result.returncode == 0, result.stderr[-3000:]
    # timing rounds split over two fresh processes, a session calibration beside them
    result = _run("--mode=validate", f"--table={table}", "--num_archs=3",
                  "--session_calibration_archs=3", "--network_passes=2",
                  "--network_processes=2", f"--out={tmp_path / 'report.json'}", *FAST)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert Path(report["plot"]).exists() and report["num_archs"] == 3
    assert "timing process 2: 1 rounds" in result.stderr
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["status"] == "complete" and saved["timing"]["passes_done"] == 2
    assert saved["calibration"]["session"] and len(saved["genotypes"]) == 6
    result = _run("--mode=build", f"--table={table}", *TINY[:-1], "--target_width=64",
                  *FAST)
    assert result.returncode == 2 and "other settings" in result.stderr
    # the search reads the table it wrote, per op and as CAS whole-network differences
    for mode in ("per_op", "cas"):
        search = subprocess.run(
            [sys.executable, str(ROOT / "bin" / "search"), "--synthetic_images=8",
             "--synthetic_height=32", "--synthetic_width=32", *TINY, "--batch_size=4",
             "--iterations=2", "--cost=latency", f"--cost_mode={mode}",
             "--cost_lambda=0.1", f"--latency_table={table}",
             f"--run_dir={tmp_path / mode}"],
            capture_output=True, text=True, timeout=600, env=ENV)
        assert search.returncode == 0, search.stderr[-3000:]
        summary = json.loads((tmp_path / mode / "search_summary.json").read_text())
        assert summary["cost"]["unit"] == "ms" and summary["cost"]["expected"] != 0


AUTORTNET = ("--method=autortnet", "--hyper_cells=2,2,2", "--channels=4",
             "--channel_growth=2", "--steps=2", "--agg_channels=4", "--ms_channels=4",
             "--synthetic_classes=3", "--target_height=32", "--target_width=32")


def test_autortnet_has_no_whole_network_mode():
    result = _run("--mode=network", "--table=/tmp/x.json", *AUTORTNET, timeout=60)
    assert result.returncode == 2 and "--mode=build" in result.stderr, result.stderr[-2000:]


@pytest.mark.slow
def test_autortnet_build_calibrate_validate_and_latency_search(tmp_path):
    table = tmp_path / "autortnet.json"
    result = _run("--mode=build", f"--table={table}", *AUTORTNET, *FAST)
    assert result.returncode == 0, result.stderr[-3000:]
    built = json.loads(result.stdout)
    assert built["entries"] > 100
    data = json.loads(table.read_text())
    assert data["space"]["method"] == "autortnet"
    assert any(k.startswith("autortnet_cell/dil_sep_conv_3x3_r4|") for k in data["entries"])
    result = _run("--mode=calibrate", f"--table={table}", "--calibration_archs=3", *FAST)
    assert result.returncode == 0, result.stderr[-3000:]
    # no session calibration: refitting on 20 tiny networks timed with FAST settings
    # finds no relation on a busy machine (a correct refusal, not what this tests)
    result = _run("--mode=validate", f"--table={table}", "--num_archs=3",
                  "--session_calibration_archs=0", f"--out={tmp_path / 'report.json'}",
                  *FAST)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert Path(report["plot"]).exists() and report["num_archs"] == 3
    search = subprocess.run(
        [sys.executable, str(ROOT / "bin" / "search"), "--synthetic_images=8",
         "--synthetic_height=32", "--synthetic_width=32", *AUTORTNET, "--batch_size=4",
         "--iterations=2", "--cost=latency", "--cost_lambda=0.1",
         f"--latency_table={table}", f"--run_dir={tmp_path / 'search'}"],
        capture_output=True, text=True, timeout=900, env=ENV)
    assert search.returncode == 0, search.stderr[-3000:]
    summary = json.loads((tmp_path / "search" / "search_summary.json").read_text())
    assert summary["cost"]["unit"] == "ms" and summary["cost"]["expected"] > 0
    derived = summary["derived_predicted_cost"]
    assert derived["kind"] == "latency" and derived["value"] > 0
    assert "every layer" in derived["covers"]


def test_a_table_another_process_is_writing_is_refused(tmp_path):
    from tf_nas_seg.utils.run_state import RunLock

    table = tmp_path / "table.json"
    with RunLock(table, "bin/latency_table --mode=build", RuntimeError, is_file=True):
        result = _run("--mode=build", f"--table={table}", *TINY, *FAST)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "table.json is in use by bin/latency_table --mode=build (pid" in result.stderr
    assert not table.exists()
