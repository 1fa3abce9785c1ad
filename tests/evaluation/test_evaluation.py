"""Scores equal an independent NumPy computation, for .keras models and SavedModels."""

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
from tf_nas_seg.evaluation import (PredictorError, evaluate_source, load_predictor,
                                   scores_from_confusion)
from tf_nas_seg.networks.stem import normalization_layer

ROOT = Path(__file__).resolve().parents[2]
CLASSES = 4


def _numpy_scores(labels, predictions, num_classes, ignore=255):
    valid = labels != ignore
    confusion = np.bincount(labels[valid] * num_classes + predictions[valid],
                            minlength=num_classes ** 2).reshape(num_classes, num_classes)
    ious = []
    for k in range(num_classes):
        tp = confusion[k, k]
        union = confusion[k].sum() + confusion[:, k].sum() - tp
        if union:
            ious.append(tp / union)
    return float(np.mean(ious)), float(np.trace(confusion) / confusion.sum()), confusion


@pytest.fixture(scope="module")
def random_model(tmp_path_factory):
    """An untrained conv net: its predictions are effectively random class maps."""
    keras.utils.set_random_seed(3)
    images = keras.Input((None, None, 3), name="images")
    x = normalization_layer()(images)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    logits = keras.layers.Conv2D(CLASSES, 3, padding="same")(x)
    model = keras.Model(images, logits)
    path = tmp_path_factory.mktemp("model") / "random.keras"
    model.save(path)
    return model, path


def _source():
    source = make_street_scenes(num_images=6, height=32, width=48, num_classes=CLASSES,
                                seed=5, split="val")
    return source


def _arrays(source):
    from tf_nas_seg.data import make_dataset

    images, labels = [], []
    for x, y in make_dataset(source, batch_size=1, seed=0, shuffle=False):
        images.append(x.numpy()[0])
        labels.append(y.numpy()[0])
    return np.stack(images), np.stack(labels)


def test_scores_from_confusion_skip_absent_classes():
    confusion = np.array([[5, 1, 0], [2, 3, 0], [0, 0, 0]])
    scores = scores_from_confusion(confusion, ["a", "b", "c"])
    assert scores["per_class_iou"]["c"] is None
    assert scores["miou"] == pytest.approx((5 / 8 + 3 / 6) / 2)
    assert scores["pixel_accuracy"] == pytest.approx(8 / 11)


def test_evaluation_equals_numpy_on_random_predictions(random_model, tmp_path):
    model, path = random_model
    source = _source()
    images, labels = _arrays(source)
    labels[:, :3] = 255  # some ignored pixels
    predictions = np.argmax(model.predict(images, verbose=0), -1)
    miou, accuracy, confusion = _numpy_scores(labels, predictions, CLASSES)
    arrays = type(source).from_arrays(source.info, images.astype(np.uint8), labels)
    scores = evaluate_source(load_predictor(path), arrays, batch_size=2, overlays=2,
                             overlay_dir=tmp_path, progress=False)
    assert 0.05 < miou < 0.95  # the predictions really are imperfect
    # Exact: both sides count the same integer confusion matrix (asserted first) and
    # divide in float64; only a float32 argmax tie between the two forward passes could
    # move them, and then the confusion-matrix assertion names it.
    assert scores["confusion_matrix"] == confusion.tolist()
    assert scores["miou"] == pytest.approx(miou, rel=1e-7)
    assert scores["pixel_accuracy"] == pytest.approx(accuracy, rel=1e-7)
    assert len(scores["overlays"]) == 2 and all(os.path.exists(p) for p in scores["overlays"])


def test_flip_augmentation_averages_mirrored_predictions(random_model):
    model, path = random_model
    images, _ = _arrays(_source())
    predictor = load_predictor(path)
    plain = np.asarray(predictor.predict(images[:2]))
    mirrored = np.asarray(predictor.predict(images[:2, :, ::-1]))[:, :, ::-1]
    both = np.asarray(predictor.predict(images[:2], flip=True))
    np.testing.assert_allclose(both, (plain + mirrored) / 2, rtol=1e-5, atol=1e-6)


def test_saved_model_with_a_serving_signature_scores_the_same(random_model, tmp_path):
    model, path = random_model

    class Serving(tf.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8,
                                                    name="images")])
        def serve(self, images):
            logits = self.model(tf.cast(images, tf.float32), training=False)
            return {"probabilities": tf.nn.softmax(logits),
                    "class_map": tf.argmax(logits, -1, output_type=tf.int32)}

    module = Serving(model)
    export = tmp_path / "random" / "1"
    tf.saved_model.save(module, str(export), signatures={"serving_default": module.serve})
    source = _source()
    from_keras = evaluate_source(load_predictor(path), source, progress=False)
    # The SavedModel parent directory resolves to its highest version (TF Serving layout).
    from_saved = evaluate_source(load_predictor(tmp_path / "random"), source, progress=False)
    # float32 logits through two graph builds (Grappler may fuse them differently on
    # another CPU): a near-tied pixel may flip its argmax, moving mIoU by ~1e-5
    assert from_saved["miou"] == pytest.approx(from_keras["miou"], abs=1e-3)
    with pytest.raises(PredictorError, match="does not exist"):
        load_predictor(tmp_path / "nothing.keras")


def test_bin_evaluate_writes_the_scores(random_model, tmp_path):
    _, path = random_model
    out = tmp_path / "eval.json"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "bin" / "evaluate"), f"--model={path}",
         "--synthetic_images=6", "--synthetic_height=32", "--synthetic_width=48",
         f"--synthetic_classes={CLASSES}", "--seed=5", "--overlays=1", f"--out={out}"],
        capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    expected = evaluate_source(load_predictor(path), _source(), progress=False)
    # Another process, same model and data: equal up to float32 argmax ties.
    assert report["miou"] == pytest.approx(expected["miou"], abs=1e-3)
    assert report["num_images"] == 6 and report["model_format"] == "keras"
    assert len(report["per_class_iou"]) == CLASSES
    assert (tmp_path / "overlays" / "prediction_000.png").exists()
    bad = subprocess.run([sys.executable, str(ROOT / "bin" / "evaluate"),
                          f"--model={tmp_path / 'missing.keras'}"],
                         capture_output=True, text=True, timeout=300, env=env)
    assert bad.returncode == 2 and "does not exist" in bad.stderr
