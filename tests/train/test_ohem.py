"""OHEM keeps the hardest labelled pixels and never counts ignored ones."""

import numpy as np
import pytest

from tf_nas_seg.train.ohem import SegmentationLoss, ohem_cross_entropy


def _reference(labels, logits, ignore=255, threshold=0.7, min_kept=1 / 16):
    """BiSeNet's OhemCELoss in NumPy: sort labelled losses, cut at the threshold."""
    shifted = logits - logits.max(-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    valid = labels != ignore
    losses = -np.take_along_axis(log_p, np.where(valid, labels, 0)[..., None], -1)[..., 0]
    losses = np.sort(losses[valid])[::-1]
    if losses.size == 0:
        return 0.0
    n_min = min(int(np.floor(losses.size * min_kept)), losses.size - 1)
    hard = -np.log(threshold)
    if losses[n_min] > hard:
        return losses[losses > hard].mean()
    return losses[:n_min + 1].mean()


@pytest.mark.parametrize("seed", range(6))
def test_ohem_equals_the_reference_on_random_batches(seed):
    rng = np.random.default_rng(seed)
    scale = [0.5, 4.0, 10.0][seed % 3]  # few, some, most pixels easy
    logits = (rng.normal(size=(2, 9, 11, 5)) * scale).astype(np.float32)
    labels = rng.integers(0, 5, (2, 9, 11)).astype(np.int32)
    labels[rng.random(labels.shape) < 0.2] = 255
    got = float(ohem_cross_entropy(labels, logits, threshold=0.7, min_kept=0.1))
    assert got == pytest.approx(_reference(labels, logits, min_kept=0.1), rel=1e-5)


def test_only_hard_pixels_count_and_ignored_pixels_never_do():
    labels = np.zeros((1, 1, 100), np.int32)
    logits = np.zeros((1, 1, 100, 2), np.float32)
    logits[..., :90, 0] = 8.0  # 90 easy pixels, p(true) ~ 1
    logits[..., 90:, 1] = 1.0  # 10 hard pixels, p(true) = 0.27
    hard_loss = np.log(1 + np.e)
    assert float(ohem_cross_entropy(labels, logits, min_kept=0.0)) == pytest.approx(
        hard_loss, rel=1e-5)
    # Ignored pixels with enormous losses change nothing.
    labels2 = labels.copy()
    labels2[..., 40:60] = 255
    logits2 = logits.copy()
    logits2[..., 40:60, 1] = 50.0
    assert float(ohem_cross_entropy(labels2, logits2, min_kept=0.0)) == pytest.approx(
        hard_loss, rel=1e-5)


def test_min_kept_keeps_the_hardest_when_everything_is_easy():
    labels = np.zeros((1, 1, 100), np.int32)
    logits = np.zeros((1, 1, 100, 2), np.float32)
    logits[..., 0] = np.linspace(3.0, 12.0, 100)  # all easy, losses decreasing
    expected = np.log1p(np.exp(-logits[0, 0, :26, 0])).mean()  # floor(100*0.25)+1 kept
    got = float(ohem_cross_entropy(labels, logits, min_kept=0.25))
    assert got == pytest.approx(expected, rel=1e-5)


def test_all_ignored_gives_zero_and_the_loss_object_serialises():
    labels = np.full((1, 4, 4), 255, np.int32)
    logits = np.random.default_rng(0).normal(size=(1, 4, 4, 3)).astype(np.float32)
    assert float(ohem_cross_entropy(labels, logits)) == 0.0
    loss = SegmentationLoss("ohem", threshold=0.6, min_kept=0.2)
    clone = SegmentationLoss.from_config(loss.get_config())
    assert clone.get_config() == loss.get_config()
    with pytest.raises(ValueError, match="mode"):
        SegmentationLoss("focal")


@pytest.mark.parametrize("mode", ["ohem", "ce"])
def test_no_class_weights_is_the_unweighted_loss_exactly(mode):
    rng = np.random.default_rng(7)
    logits = (rng.normal(size=(2, 9, 11, 5)) * 3).astype(np.float32)
    labels = rng.integers(0, 5, (2, 9, 11)).astype(np.int32)
    labels[rng.random(labels.shape) < 0.2] = 255
    loss = SegmentationLoss(mode, min_kept=0.1)
    assert loss.class_weights is None and loss.get_config()["class_weights"] is None
    got = float(loss(labels, logits))
    if mode == "ohem":
        assert got == float(ohem_cross_entropy(labels, logits, min_kept=0.1))
    else:
        assert got == pytest.approx(_reference(labels, logits, threshold=1.0, min_kept=1.0),
                                    rel=1e-5)
