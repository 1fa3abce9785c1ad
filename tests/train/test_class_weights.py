"""Class-balanced losses: the weights equal NumPy's counts, the losses PyTorch's recipe."""

import json
import os

import keras
import numpy as np
import pytest

from tests.train.test_trainer import TINY
from tf_nas_seg.data import DatasetInfo, SegmentationSource
from tf_nas_seg.train import TrainConfig, TrainError, run_training
from tf_nas_seg.train import class_weights as cw
from tf_nas_seg.train.ohem import SegmentationLoss, ohem_cross_entropy

K = 5
INFO = DatasetInfo(name="toy", num_classes=K, class_names=tuple("abcde"),
                   palette=tuple((i, i, i) for i in range(K)))


def _split(seed=0):
    """Mixed-size labels: ignore pixels, class 3 in only some images, class 4 in none."""
    rng = np.random.default_rng(seed)
    labels = []
    for i, (h, w) in enumerate([(7, 9), (5, 6), (8, 8), (7, 9), (3, 11)]):
        label = rng.choice(np.array([0, 1, 2], np.uint8), size=(h, w), p=[0.6, 0.3, 0.1])
        label[rng.random((h, w)) < 0.25] = 255
        if i in (1, 3):
            label[rng.random((h, w)) < 0.2] = 3
        labels.append(label)
    images = [np.zeros(y.shape + (3,), np.uint8) for y in labels]
    return SegmentationSource.from_arrays(INFO, images, labels), labels


def _numpy_counts(labels, k=K):
    """(pixels, labelled pixels of the images holding the class, images) per class."""
    per_image = np.stack([np.bincount(y[y != 255].astype(np.int64), minlength=k)
                          for y in labels])  # [N, k]
    labelled = per_image.sum(1)
    present_pixels = ((per_image > 0) * labelled[:, None]).sum(0)
    return per_image.sum(0), present_pixels, (per_image > 0).sum(0)


def test_median_frequency_and_enet_weights_equal_numpy(monkeypatch):
    source, labels = _split()
    warnings = []
    monkeypatch.setattr(cw.logging, "warning", lambda *a: warnings.append(a[0] % a[1:]))
    pixels, present_pixels, images = _numpy_counts(labels)
    assert pixels[3] > 0 and images[3] == 2 and pixels[4] == 0  # the case under test

    med = cw.compute_class_weights(source, "median_frequency", "train")
    assert med["pixel_counts"] == pixels.tolist()
    assert med["present_image_pixels"] == present_pixels.tolist()
    assert med["images_present"] == images.tolist()
    assert med["labelled_pixels"] == int(pixels.sum()) and med["num_images"] == 5
    seen = pixels > 0
    freq = pixels[seen] / present_pixels[seen]
    np.testing.assert_allclose(med["frequencies"][:4], freq, rtol=1e-12)
    np.testing.assert_allclose(med["weights"][:4], np.median(freq) / freq, rtol=1e-12)
    assert med["weights"][4] == 0.0 and med["frequencies"][4] == 0.0
    assert med["absent_classes"] == ["e"] and med["class_names"] == list("abcde")
    # The denominator is the labelled pixels of the images holding the class, so
    # class 3 (in 2 of 5 images) is not down-weighted for the images it is absent from.
    assert present_pixels[3] < pixels.sum()

    enet = cw.compute_class_weights(source, "enet", "train")
    p = pixels / pixels.sum()
    np.testing.assert_allclose(enet["frequencies"], p, rtol=1e-12)
    np.testing.assert_allclose(enet["weights"][:4], 1 / np.log(1.02 + p[:4]), rtol=1e-12)
    assert enet["weights"][4] == 0.0
    assert len(warnings) == 2 and all("'e'" in w for w in warnings)
    json.dumps(med), json.dumps(enet)  # JSON-able as written to the run directory


def test_all_ignored_split_and_bad_records_are_refused():
    labels = np.full((2, 4, 4), 255, np.uint8)
    source = SegmentationSource.from_arrays(INFO, np.zeros((2, 4, 4, 3), np.uint8), labels)
    with pytest.raises(ValueError, match="no labelled pixel"):
        cw.compute_class_weights(source, "enet")
    with pytest.raises(ValueError, match="method"):
        cw.compute_class_weights(source, "inverse")
    record = cw.compute_class_weights(_split()[0], "enet")
    assert cw.check_class_weights(record, "enet", INFO.class_names) == record["weights"]
    with pytest.raises(ValueError, match="method 'enet'"):
        cw.check_class_weights(record, "median_frequency", INFO.class_names)
    with pytest.raises(ValueError, match="classes"):
        cw.check_class_weights(record, "enet", INFO.class_names[:4])
    with pytest.raises(ValueError, match="finite"):
        cw.check_class_weights({**record, "weights": [1.0, -1.0, 1, 1, 1]}, "enet",
                               INFO.class_names)


def _log_softmax(logits):
    shifted = logits.astype(np.float64) - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def _pixel_losses(labels, logits):
    valid = labels != 255
    safe = np.where(valid, labels, 0)
    return -np.take_along_axis(_log_softmax(logits), safe[..., None], -1)[..., 0], valid


def _random_batch(seed, classes=4, scale=3.0):
    rng = np.random.default_rng(seed)
    logits = (rng.normal(size=(2, 6, 7, classes)) * scale).astype(np.float32)
    labels = rng.integers(0, classes, (2, 6, 7)).astype(np.int32)
    labels[rng.random(labels.shape) < 0.2] = 255
    weights = rng.uniform(0.1, 5.0, classes)
    return labels, logits, weights


@pytest.mark.parametrize("seed", range(4))
def test_weighted_cross_entropy_equals_numpy(seed):
    labels, logits, weights = _random_batch(seed)
    losses, valid = _pixel_losses(labels, logits)
    w = np.where(valid, weights[np.where(valid, labels, 0)], 0.0)
    expected = (w * losses).sum() / w.sum()  # PyTorch CrossEntropyLoss(weight=w), mean
    got = float(SegmentationLoss("ce", class_weights=weights)(labels, logits))
    assert got == pytest.approx(expected, rel=1e-5)
    # Weights all 1 give the unweighted loss.
    plain = float(SegmentationLoss("ce")(labels, logits))
    ones = float(SegmentationLoss("ce", class_weights=np.ones(4))(labels, logits))
    assert ones == pytest.approx(plain, rel=1e-6)
    assert plain == pytest.approx(losses[valid].mean(), rel=1e-5)


@pytest.mark.parametrize("seed", range(4))
def test_weighted_ohem_selects_unweighted_then_takes_the_weighted_mean(seed):
    labels, logits, weights = _random_batch(seed, scale=[0.5, 4.0, 10.0, 3.0][seed])
    losses, valid = _pixel_losses(labels, logits)
    flat, lab = losses[valid], labels[valid]
    order = np.argsort(-flat, kind="stable")
    n_min = min(int(np.floor(flat.size * 0.1)), flat.size - 1)
    hard = -np.log(0.7)
    keep = flat > hard if flat[order[n_min]] > hard else flat >= flat[order[n_min]]
    w = weights[lab] * keep
    expected = (w * flat).sum() / w.sum()
    got = float(ohem_cross_entropy(labels, logits, threshold=0.7, min_kept=0.1,
                                   class_weights=weights))
    assert got == pytest.approx(expected, rel=1e-5)
    plain = float(ohem_cross_entropy(labels, logits, threshold=0.7, min_kept=0.1))
    ones = float(SegmentationLoss("ohem", threshold=0.7, min_kept=0.1,
                                  class_weights=[1.0] * 4)(labels, logits))
    assert ones == pytest.approx(plain, rel=1e-6)


def test_weighted_ohem_by_hand():
    # Two classes, weights 2 (class 0) and 0.5 (class 1), nothing kept by min_kept.
    logits = np.zeros((1, 1, 6, 2), np.float32)
    labels = np.array([[[0, 0, 1, 0, 1, 255]]], np.int32)
    logits[0, 0, 0:2] = [0.0, 1.0]  # class 0, hard: loss ln(1 + e)
    logits[0, 0, 2] = [0.0, 0.0]  # class 1, hard: loss ln 2
    logits[0, 0, 3] = [8.0, 0.0]  # class 0, easy: not kept
    logits[0, 0, 4] = [0.0, 8.0]  # class 1, easy: not kept
    logits[0, 0, 5] = [30.0, 0.0]  # ignored, enormous loss for its (absent) label
    hard0, hard1 = np.log1p(np.e), np.log(2.0)
    expected = (2 * hard0 + 2 * hard0 + 0.5 * hard1) / (2 + 2 + 0.5)
    loss = SegmentationLoss("ohem", threshold=0.7, min_kept=0.0, class_weights=[2.0, 0.5])
    assert float(loss(labels, logits)) == pytest.approx(expected, rel=1e-6)
    unweighted = SegmentationLoss("ohem", threshold=0.7, min_kept=0.0)
    assert float(unweighted(labels, logits)) == pytest.approx((2 * hard0 + hard1) / 3,
                                                             rel=1e-6)
    # Only weight-0 pixels kept, or only ignored ones: 0, not NaN.
    zero = SegmentationLoss("ohem", min_kept=0.0, class_weights=[0.0, 0.0])
    assert float(zero(labels, logits)) == 0.0
    ignored = np.full_like(labels, 255)
    assert float(loss(ignored, logits)) == 0.0
    assert float(SegmentationLoss("ce", class_weights=[2.0, 0.5])(ignored, logits)) == 0.0


def test_loss_validates_and_serialises_its_weights():
    loss = SegmentationLoss("ce", class_weights=np.array([1.0, 2.5]))
    clone = SegmentationLoss.from_config(loss.get_config())
    assert clone.class_weights == [1.0, 2.5] and clone.get_config() == loss.get_config()
    for bad in ([1.0, -0.5], [np.nan, 1.0], [], [[1.0]]):
        with pytest.raises(ValueError, match="class_weights"):
            SegmentationLoss("ce", class_weights=bad)
    logits = np.zeros((1, 2, 2, 3), np.float32)
    with pytest.raises(ValueError, match="2 class weights for logits of 3"):
        loss(np.zeros((1, 2, 2), np.int32), logits)


RUN = {**TINY, "iterations": 3, "eval_every": 0}


def test_training_writes_class_weights_and_resume_reads_them(tmp_path, monkeypatch):
    run = tmp_path / "run"
    config = TrainConfig(run_dir=str(run), class_weights="median_frequency",
                         stop_after_iterations=2, **RUN)
    first = run_training(config)
    assert first["status"] == "interrupted"
    path = run / "class_weights.json"
    record = json.loads(path.read_text())
    # The weights are those of the training split's labels, counted directly.
    from tf_nas_seg.train.trainer import load_sources

    train, _ = load_sources(config)
    labels = [train.load(i)[1].numpy() for i in range(len(train))]
    pixels, present_pixels, _ = _numpy_counts(labels, train.info.num_classes)
    seen = pixels > 0
    freq = pixels[seen] / present_pixels[seen]
    np.testing.assert_allclose(np.array(record["weights"])[seen], np.median(freq) / freq,
                               rtol=1e-12)
    assert record["pixel_counts"] == pixels.tolist()
    assert record["method"] == "median_frequency"
    assert record["class_names"] == list(train.info.class_names)
    assert first["class_weights"]["weights"] == dict(zip(record["class_names"],
                                                         record["weights"]))
    mtime = os.stat(path).st_mtime_ns

    def recount(*args, **kwargs):
        raise AssertionError("a resumed run must read class_weights.json, not recount")

    monkeypatch.setattr(cw, "compute_class_weights", recount)
    keras.backend.clear_session()
    resumed = run_training(config.replace(stop_after_iterations=0))
    assert resumed["status"] == "completed"
    assert os.stat(path).st_mtime_ns == mtime
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["class_weights"]["method"] == "median_frequency"
    assert summary["class_weights"]["weights"] == dict(zip(record["class_names"],
                                                           record["weights"]))
    # A record for other classes (or another method) is refused, not silently used.
    path.write_text(json.dumps({**record, "method": "enet"}))
    with pytest.raises(TrainError, match="class_weights.json"):
        run_training(config.replace(stop_after_iterations=0))


@pytest.mark.slow  # two trainings (~9 s idle)
def test_a_run_started_before_the_setting_existed_resumes(tmp_path):
    run = tmp_path / "old"
    first = run_training(TrainConfig(run_dir=str(run), stop_after_iterations=1, **RUN))
    assert first["status"] == "interrupted" and first["class_weights"] is None
    saved = json.loads((run / "config.json").read_text())
    del saved["class_weights"]  # as an older version wrote it
    (run / "config.json").write_text(json.dumps(saved))
    keras.backend.clear_session()
    resumed = run_training(TrainConfig(run_dir=str(run), **RUN))
    assert resumed["status"] == "completed" and resumed["class_weights"] is None
    assert not (run / "class_weights.json").exists()
    # Turning the weights on for that run is a change of settings, refused.
    with pytest.raises(TrainError, match="class_weights"):
        run_training(TrainConfig(run_dir=str(run), class_weights="enet", **RUN))
