"""bin/benchmark on a tiny model: valid JSON, every field, Markdown ratios."""

import json
import subprocess
import sys
from pathlib import Path

import keras
import pytest

from tf_nas_seg.benchmark import BenchmarkError, latency_stats, parse_resolutions
from tf_nas_seg.networks import build_network

ROOT = Path(__file__).resolve().parents[2]


def test_latency_stats_and_resolutions():
    stats = latency_stats([0.001] * 98 + [0.002, 0.010])
    assert stats["median_ms"] == pytest.approx(1.0) and stats["runs"] == 100
    assert stats["p99_ms"] > stats["p90_ms"] >= stats["median_ms"]
    assert stats["fps"] == pytest.approx(1000.0)
    assert parse_resolutions("360x480, 64x128") == [(360, 480), (64, 128)]
    with pytest.raises(BenchmarkError, match="HEIGHTxWIDTH"):
        parse_resolutions("360by480")


def test_benchmark_of_a_tiny_model_writes_valid_json(tmp_path):
    keras.utils.set_random_seed(0)
    build_network(None, 3, peer="fast_scnn", width_multiplier=0.25).save(
        tmp_path / "tiny.keras")
    out = subprocess.run(
        [sys.executable, str(ROOT / "bin/benchmark"),
         f"--compare={tmp_path / 'tiny.keras'}", "--sizes=32x48", "--runs=5",
         "--warmup=1",
         f"--out={tmp_path / 'bench.json'}"],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads((tmp_path / "bench.json").read_text())
    assert report["settings"]["runs"] == 5 and report["settings"]["interleaved"]
    env = report["environment"]
    assert env["device"] == "/CPU:0" and env["versions"]["tensorflow"] and "threads" in env
    assert report["matmul_peak_gflops"]["used"] > 0
    assert len(report["results"]) == 1
    for entry in report["results"]:
        assert entry["latency"]["runs"] == 5 and entry["latency"]["median_ms"] > 0
        assert entry["params"] > 0 and entry["macs"] > 0
        assert 0 < entry["fraction_of_matmul_peak"]
    assert "| tiny.keras | keras | 32x48 |" in out.stdout and "latency ratio" in out.stdout


def test_benchmark_refuses_a_missing_model(tmp_path):
    from tf_nas_seg.benchmark import run_benchmark

    with pytest.raises(BenchmarkError, match="does not exist"):
        run_benchmark([str(tmp_path / "none.keras")], [(32, 32)], runs=1)


def test_model_labels_tell_models_with_the_same_file_name_apart():
    from tf_nas_seg.benchmark.benchmark_runner import model_labels

    models = ["runs/demo/train/model.keras", "runs/demo/saved_models/demo/1",
              "runs/demo_peer/train/model.keras", "x/model_int8.tflite",
              "runs/demo/train/model.keras"]
    formats = ["keras", "saved_model", "keras", "tflite", "keras"]
    assert model_labels(models, formats) == {
        "runs/demo/train/model.keras": "demo/train/model.keras",
        "runs/demo/saved_models/demo/1": "demo/1",
        "runs/demo_peer/train/model.keras": "demo_peer/train/model.keras",
        "x/model_int8.tflite": "model_int8.tflite"}


def test_table_prediction_is_the_whole_network_or_says_why_not(tmp_path):
    import numpy as np

    from tests.latency.helpers import TINY_LAYOUT, tiny_space
    from tf_nas_seg.benchmark.latency_prediction import predict_latency_ms
    from tf_nas_seg.latency.profiles import get_profile
    from tf_nas_seg.latency.table import LatencyTable

    space = tiny_space()
    profile = get_profile("cas")
    keys = {e.key for e in profile.supernet_entries(space)}
    meta = {"space": space, "call_overhead_ms": 0.2,
            "calibration": {"scale": 2.0, "offset_ms": 1.0}}
    table = LatencyTable({k: 0.01 * (i + 1) for i, k in enumerate(sorted(keys))}, meta)
    genotype = profile.sample_genotype(space, np.random.default_rng(0))
    path = tmp_path / "genotype.json"
    genotype.save(path)
    network = [e.key for e in profile.network_entries(space, genotype)]
    ms, n, why = predict_latency_ms(str(path), table, 32, 48, 3)
    assert why is None and n == len(network)
    assert ms == pytest.approx(1.0 + 2.0 * (0.2 + sum(table.entries[k] for k in network)))
    assert predict_latency_ms(str(path), table, 64, 96, 3)[2].startswith(
        "the table was measured at 32x48")
    assert "classes" in predict_latency_ms(str(path), table, 32, 48, 5)[2]
    other = genotype.__class__.create(genotype.method, dict(genotype.cells),
                                      macro={"layout": {**TINY_LAYOUT.to_json(),
                                                        "channels": 8}})
    other.save(tmp_path / "other.json")
    assert "layout" in predict_latency_ms(str(tmp_path / "other.json"), table, 32, 48, 3)[2]
