"""bin/export end to end on a network trained on bundled data (slow: trains, converts all)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tf_nas_seg.export import ArtifactRunner, onnx_available, source_images
from tf_nas_seg.train import TrainConfig, run_training

ROOT = Path(__file__).resolve().parents[2]
# Enough training on the bundled scenes that the class maps are meaningful (val mIoU is
# checked), small enough to take about a minute on 2 cores.
TRAINED = dict(peer="fast_scnn", width_multiplier=0.5, synthetic_images=64,
               synthetic_val_images=8, synthetic_height=64, synthetic_width=128,
               synthetic_classes=6, crop_height=64, crop_width=128, scale_min=1.0,
               scale_max=1.0, batch_size=8, iterations=200, lr=0.1, eval_every=200,
               checkpoint_every=1000, overlays=0, deterministic=False)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained_export(tmp_path_factory):
    root = tmp_path_factory.mktemp("trained")
    summary = run_training(TrainConfig(run_dir=str(root / "run"), **TRAINED))
    out = subprocess.run([sys.executable, str(ROOT / "bin/export"),
                          f"--model={root / 'run/model.keras'}", "--name=trained",
                          "--version=3", f"--out_dir={root / 'saved_models'}",
                          "--latency_runs=3", "--calibration_images=32"],
                         capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    card = json.loads((root / "saved_models/trained/3/model_card.json").read_text())
    return root, summary, card, out.stdout


def test_the_network_learned_something(trained_export):
    _, summary, card, _ = trained_export
    assert summary["final_val"]["miou"] >= 0.4
    assert card["metrics"]["val_miou"] == pytest.approx(summary["final_val"]["miou"])
    assert card["classes"] and card["training_data"]["name"] == "synthetic6"


def test_tflite_int8_agrees_with_keras_on_bundled_data(trained_export):
    root, _, card, stdout = trained_export
    assert "check tflite_int8" in stdout or "model_int8.tflite" in stdout
    assert card["checks_against_keras"]["tflite_int8"]["argmax_agreement"] >= 0.97
    # Recomputed independently on more held-out scenes.
    from tf_nas_seg.data import make_street_scenes
    from tf_nas_seg.export.artifact_runner import load_keras_model

    model = load_keras_model(root / "run/model.keras")
    runner = ArtifactRunner(root / "saved_models/trained/3/model_int8.tflite")
    scenes = make_street_scenes(num_images=16, height=64, width=128, num_classes=6, seed=7,
                                split="test")
    images = source_images(scenes, 16, (64, 128))
    agree = [np.mean(runner(x[None]).argmax(-1) ==
                     model(tf.constant(x[None], tf.float32)).numpy().argmax(-1))
             for x in images]
    assert np.mean(agree) >= 0.97


def test_every_available_format_matches_keras(trained_export):
    _, _, card, _ = trained_export
    checks = card["checks_against_keras"]
    for key in ("saved_model", "tflite_fp32"):
        assert checks[key]["max_abs_diff_probabilities"] < 1e-4
        assert checks[key]["argmax_agreement"] >= 0.999
    assert checks["tflite_fp16"]["argmax_agreement"] >= 0.99
    if onnx_available():
        assert checks["onnx"]["max_abs_diff_probabilities"] < 1e-4
    else:
        assert "pip install" in card["skipped"]["onnx"]
