"""bin/export: a SavedModel TF Serving loads, outputs equal to Keras, atomic writes, formats."""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_nas_seg.data import make_street_scenes
from tf_nas_seg.export import (MODEL_CARD, TFTRT_MISSING, ExportError, export_model,
                               onnx_available, read_warmup_requests, tensorrt_available)
from tf_nas_seg.export import exporter as exporter_module
from tf_nas_seg.networks import build_network

ROOT = Path(__file__).resolve().parents[2]
CLASSES = 4


def _sources():
    make = lambda n, split: make_street_scenes(num_images=n, height=32, width=48,  # noqa: E731
                                               num_classes=CLASSES, seed=1, split=split)
    return make(4, "train"), make(3, "val")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny untrained peer exported as SavedModel (and TF-TRT, which may be absent)."""
    root = tmp_path_factory.mktemp("export")
    keras.utils.set_random_seed(0)
    model = build_network(None, CLASSES, peer="fast_scnn", width_multiplier=0.25)
    model.save(root / "model.keras")
    train, val = _sources()
    card = export_model(root / "model.keras", "tiny", 1, formats=("saved_model", "tftrt"),
                        out_dir=root / "saved_models", train_source=train, sample_source=val,
                        check_images=2, latency_runs=2)
    return root, model, card


def test_saved_model_loads_with_the_serving_signature(exported):
    root, _, card = exported
    directory = root / "saved_models" / "tiny" / "1"
    loaded = tf.saved_model.load(str(directory))
    signature = loaded.signatures["serving_default"]
    (name, spec), = signature.structured_input_signature[1].items()
    assert name == "images" and spec.dtype == tf.uint8
    assert spec.shape.rank is None  # checked in the graph (see serving_function)
    # serving_default (what TF Serving runs) returns the class map only; the
    # probabilities signature returns both.
    assert set(signature.structured_outputs) == {"class_map"}
    assert signature.structured_outputs["class_map"].dtype == tf.int32
    scores = loaded.signatures["probabilities"]
    assert scores.structured_input_signature[1]["images"].dtype == tf.uint8
    outputs = scores.structured_outputs
    assert outputs["class_map"].dtype == tf.int32 and outputs["probabilities"].dtype == tf.float32
    assert card["checks_against_keras"]["saved_model"]["argmax_agreement"] == 1.0
    assert json.loads((directory / MODEL_CARD).read_text())["num_classes"] == CLASSES
    # Only the version directory is left: no temp dirs beside it.
    assert sorted(os.listdir(root / "saved_models" / "tiny")) == ["1"]


def test_saved_model_cli_lists_the_signature(exported):
    root, _, _ = exported
    cli = Path(sys.executable).with_name("saved_model_cli")
    command = ([str(cli)] if cli.exists() else
               [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"])
    out = subprocess.run(command + ["show", "--dir", str(root / "saved_models/tiny/1"),
                                    "--tag_set", "serve", "--signature_def",
                                    "serving_default"],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stderr
    # the input's shape is unknown_rank: the graph checks it (serving_function)
    for text in ("inputs['images']", "DT_UINT8", "unknown_rank", "outputs['class_map']",
                 "DT_INT32"):
        assert text in out.stdout
    assert "outputs['probabilities']" not in out.stdout


@pytest.mark.parametrize("shape", [(1, 32, 48), (2, 40, 56), (3, 33, 47)])
def test_outputs_match_keras_for_dynamic_batch_and_sizes(exported, shape):
    root, model, _ = exported
    loaded = tf.saved_model.load(str(root / "saved_models/tiny/1"))
    images = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    out = loaded.signatures["probabilities"](images=tf.constant(images))
    served = loaded.signatures["serving_default"](images=tf.constant(images))
    np.testing.assert_array_equal(served["class_map"].numpy(), out["class_map"].numpy())
    logits = model(images.astype(np.float32), training=False)
    np.testing.assert_allclose(out["probabilities"].numpy(), tf.nn.softmax(logits).numpy(),
                               atol=1e-5)
    np.testing.assert_array_equal(out["class_map"].numpy(),
                                  np.argmax(out["probabilities"].numpy(), -1))
    assert out["class_map"].shape == shape


def test_warmup_records_parse_and_run(exported):
    root, _, _ = exported
    directory = root / "saved_models/tiny/1"
    requests = read_warmup_requests(directory / "assets.extra/tf_serving_warmup_requests")
    assert len(requests) == 2
    signature = tf.saved_model.load(str(directory)).signatures["serving_default"]
    for model_name, signature_name, inputs in requests:
        assert (model_name, signature_name, list(inputs)) == ("tiny", "serving_default",
                                                              ["images"])
        assert inputs["images"].dtype == np.uint8 and inputs["images"].shape == (1, 32, 48, 3)
        assert signature(images=tf.constant(inputs["images"]))["class_map"].shape == (1, 32, 48)


def test_warmup_bytes_equal_tensorflow_serving_api():
    pytest.importorskip("tensorflow_serving.apis.prediction_log_pb2")
    from tensorflow_serving.apis import prediction_log_pb2

    from tf_nas_seg.export import predict_log_record

    images = np.arange(2 * 3 * 4 * 3, dtype=np.uint8).reshape(1, 6, 4, 3)
    log = prediction_log_pb2.PredictionLog()
    log.predict_log.request.model_spec.name = "m"
    log.predict_log.request.model_spec.signature_name = "serving_default"
    log.predict_log.request.inputs["images"].CopyFrom(tf.make_tensor_proto(images))
    assert predict_log_record(images, "m") == log.SerializeToString()


def test_tftrt_absence_gives_the_documented_message(exported):
    _, _, card = exported
    if tensorrt_available()[0]:
        pytest.skip("this TensorFlow has TF-TRT")
    assert card["skipped"]["tftrt"] == TFTRT_MISSING.format(version=tf.__version__)
    assert "saved_model" in card["artifacts"]  # the other formats still exported


def test_evaluate_scores_the_saved_model_like_the_keras_model(exported):
    root, _, _ = exported
    from tf_nas_seg.evaluation import evaluate_source, load_predictor

    _, val = _sources()
    keras_scores = evaluate_source(load_predictor(root / "model.keras"), val, progress=False)
    served = evaluate_source(load_predictor(root / "saved_models/tiny"), val, progress=False)
    # Two float32 graphs of one network: a pixel whose two top logits tie within float32
    # rounding may flip its argmax on some CPU, so scores agree within a few pixels.
    assert served["miou"] == pytest.approx(keras_scores["miou"], abs=1e-3)
    confusion = np.asarray(served["confusion_matrix"])
    flipped = np.abs(confusion - np.asarray(keras_scores["confusion_matrix"])).sum() / 2
    assert flipped <= 1e-3 * confusion.sum()


def test_failed_export_leaves_no_version_directory(exported, monkeypatch):
    root, _, _ = exported
    train, val = _sources()

    def broken(*args, **kwargs):
        raise RuntimeError("converter crashed")

    monkeypatch.setattr(exporter_module, "convert_tflite", broken)
    with pytest.raises(RuntimeError, match="converter crashed"):
        export_model(root / "model.keras", "tiny", 2, formats=("tflite",),
                     out_dir=root / "saved_models", train_source=train, sample_source=val,
                     check_images=1, latency_runs=0)
    assert sorted(os.listdir(root / "saved_models" / "tiny")) == ["1"]


def test_existing_version_and_bad_names_are_refused(exported):
    root, _, _ = exported
    _, val = _sources()
    with pytest.raises(ExportError, match="already exists.*--version"):
        export_model(root / "model.keras", "tiny", 1, out_dir=root / "saved_models",
                     sample_source=val)
    with pytest.raises(ExportError, match="--name"):
        export_model(root / "model.keras", "a/b", 1, out_dir=root / "saved_models",
                     sample_source=val)
    with pytest.raises(ExportError, match="unknown format"):
        export_model(root / "model.keras", "tiny", 3, formats=("coreml",),
                     out_dir=root / "saved_models", sample_source=val)


@pytest.mark.slow
@pytest.mark.skipif(not onnx_available(), reason="the onnx extra is not installed")
def test_onnx_matches_keras(exported, tmp_path):
    _, model, _ = exported
    from tf_nas_seg.export import ArtifactRunner, convert_onnx

    convert_onnx(model, tmp_path / "model.onnx")
    runner = ArtifactRunner(tmp_path / "model.onnx")
    for shape in [(1, 32, 48), (1, 40, 56)]:
        images = np.random.default_rng(1).integers(0, 256, (*shape, 3), dtype=np.uint8)
        expected = model(images.astype(np.float32), training=False).numpy()
        np.testing.assert_allclose(runner(images), expected, atol=1e-4)


def test_bin_export_reports_bad_input_as_an_error(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "bin/export"),
                          f"--model={tmp_path / 'missing.keras'}", "--name=x"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 2 and out.stderr.strip().splitlines()[-1].startswith("error: ")


def test_int8_tflite_of_the_peer_converts_and_runs(exported):
    # Regression: without freezing first, int8 calibration of Fast-SCNN failed on a
    # READ_VARIABLE node.
    _, model, _ = exported
    from tf_nas_seg.export import ArtifactRunner, convert_tflite

    train, _ = _sources()
    from tf_nas_seg.export import source_images

    images = source_images(train, 2, (32, 48))
    path = exported[0] / "peer_int8.tflite"
    path.write_bytes(convert_tflite(model, "int8", (32, 48), images))
    runner = ArtifactRunner(path)
    assert runner(images[:1]).shape == (1, 32, 48, CLASSES)
    assert runner._interpreter.get_input_details()[0]["dtype"] == np.uint8


def test_model_card_paths_are_relative_to_the_working_directory(tmp_path, monkeypatch):
    from tf_nas_seg.export.exporter import _shell_dir, portable_path

    monkeypatch.chdir(tmp_path)
    assert portable_path(str(tmp_path / "runs" / "best.keras")) == os.path.join(
        "runs", "best.keras")
    outside = os.path.abspath(os.path.join(str(tmp_path), os.pardir, "elsewhere.keras"))
    assert portable_path(outside) == outside
    assert _shell_dir("saved_models/m") == '"$PWD/saved_models/m"'


@pytest.mark.parametrize("bad, message", [
    (np.zeros((1, 32, 48, 3), np.float32),
     "expected to be a uint8 tensor but is a float tensor"),
    (np.zeros((32, 48, 3), np.uint8), r"\[batch, height, width, 3\].*got shape.*32 48 3"),
    (np.zeros((1, 32, 48, 4), np.uint8), r"\[batch, height, width, 3\].*1 32 48 4"),
    (np.zeros((1, 1, 32, 48, 3), np.uint8), r"\[batch, height, width, 3\]"),
])
def test_the_signature_refuses_wrong_dtype_rank_and_channels_clearly(exported, bad,
                                                                      message):
    root, _, _ = exported
    signature = tf.saved_model.load(
        str(root / "saved_models" / "tiny" / "1")).signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        signature(images=tf.constant(bad))
    out = signature(images=tf.constant(np.zeros((2, 32, 48, 3), np.uint8)))
    assert out["class_map"].shape == (2, 32, 48)
