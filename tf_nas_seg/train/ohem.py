"""Online bootstrapped (OHEM) cross-entropy for segmentation, ignoring the ignore label.

The per-pixel, masked and class-weighted cross-entropies live in `tf_nas_seg.losses`
(shared with the search). Both losses here optionally weight every pixel by the weight of its true class
(`class_weights`, e.g. median-frequency balancing): the loss is then the weighted
mean sum(w * loss) / sum(w) over the pixels that count, as PyTorch's
`CrossEntropyLoss(weight=...)` computes it with mean reduction.
"""

import math

import keras
import numpy as np
from tf_nas_seg.errors import ConfigError
from keras import ops

from tf_nas_seg.losses import (masked_cross_entropy_terms, per_pixel_cross_entropy,
                               pixel_class_weights)


def ohem_cross_entropy(labels, logits, ignore_label=255, threshold=0.7, min_kept=0.0625,
                       class_weights=None):
    """Mean cross-entropy over the hard pixels of a batch; see `ohem_terms`."""
    total, weight = ohem_terms(labels, logits, ignore_label, threshold, min_kept,
                               class_weights)
    if class_weights is not None:
        return total / safe_weight_total(weight)
    return total / ops.maximum(weight, 1.0)


def safe_weight_total(total):
    """`weighted_mean`'s divisor: the total, or 1 when it is 0."""
    return ops.where(ops.greater(total, 0.0), total, ops.ones_like(total))


def ohem_terms(labels, logits, ignore_label=255, threshold=0.7, min_kept=0.0625,
               class_weights=None):
    """Mean cross-entropy over the hard pixels of a batch (BiSeNet / OCNet recipe).

    A pixel is hard when the predicted probability of its true class is below
    `threshold` (its loss above -log(threshold)). At least the `min_kept` fraction of the
    batch's labelled pixels (the hardest ones) are always kept, so the loss never
    vanishes when most pixels are easy. Ignored pixels never count.

    Args:
        labels: [B, H, W] int class ids.
        logits: [B, H, W, K] logits.
        ignore_label: Label value excluded.
        threshold: Probability below which a pixel is hard, in (0, 1].
        min_kept: Fraction of labelled pixels always kept, in [0, 1].
        class_weights: Optional [K] class weights. The hard pixels are selected as
            without them (by the unweighted loss, i.e. the true-class probability);
            the loss is then the weighted mean sum(w * CE) / sum(w) over the kept
            pixels, w the weight of each pixel's true class. None: the plain mean.

    Returns:
        (sum of the kept pixels' (weighted) losses, sum of their weights): the loss is
        their quotient (`ohem_cross_entropy`); a step on several replicas divides each
        replica's sum by the global total of the weights.
    """
    loss, valid = per_pixel_cross_entropy(labels, logits, ignore_label)
    flat = ops.reshape(loss, (-1,))
    valid = ops.reshape(valid, (-1,))
    num_valid = ops.sum(ops.cast(valid, "int32"))
    # Ignored pixels get -1 so they sort below every real loss (losses are >= 0).
    ranked = ops.where(valid, flat, -ops.ones_like(flat))
    n_min = ops.cast(ops.floor(ops.cast(num_valid, "float32") * min_kept), "int32")
    n_min = ops.minimum(n_min, ops.maximum(num_valid - 1, 0))
    sorted_losses = ops.flip(ops.sort(ranked), axis=0)  # descending
    kth = ops.take(sorted_losses, n_min)
    hard = -ops.log(ops.convert_to_tensor(threshold, "float32"))
    # Keep losses above the hardness threshold, or the top n_min when fewer are hard.
    cut = ops.minimum(hard, kth)
    keep = ops.logical_and(valid, ops.greater(flat, cut))
    keep = ops.logical_or(keep, ops.logical_and(valid, ops.greater_equal(flat, kth)))
    weights = ops.cast(keep, "float32")
    if class_weights is not None:
        weights = weights * ops.reshape(
            pixel_class_weights(labels, class_weights, ignore_label), (-1,))
    return ops.sum(flat * weights), ops.sum(weights)


@keras.saving.register_keras_serializable(package="tf_nas_seg")
class SegmentationLoss(keras.losses.Loss):
    """Cross-entropy for dense labels, plain or OHEM, ignoring the ignore label.

    Args:
        mode: "ohem" or "ce".
        ignore_label: Label value excluded.
        threshold: OHEM hardness threshold on the true-class probability.
        min_kept: OHEM fraction of labelled pixels always kept.
        class_weights: Optional weights, one per class (list or 1-D array of finite,
            non-negative numbers): each pixel's loss is weighted by the weight of its
            true class and the loss is sum(w * CE) / sum(w) over the counted pixels
            (all labelled ones for "ce", the hard ones for "ohem", selected
            unweighted). None: the unweighted losses, unchanged.
    """

    def __init__(self, mode="ohem", ignore_label=255, threshold=0.7, min_kept=0.0625,
                 class_weights=None, name="segmentation_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        if mode not in ("ohem", "ce"):
            raise ConfigError(f"mode must be 'ohem' or 'ce', got {mode!r}")
        if not 0 < threshold <= 1:
            raise ConfigError(f"threshold must be in (0, 1], got {threshold}")
        if not 0 <= min_kept <= 1:
            raise ConfigError(f"min_kept must be in [0, 1], got {min_kept}")
        self.mode, self.ignore_label = mode, int(ignore_label)
        self.threshold, self.min_kept = float(threshold), float(min_kept)
        if class_weights is not None:
            array = np.asarray(class_weights, dtype=np.float64)
            if (array.ndim != 1 or not array.size
                    or not all(math.isfinite(w) and w >= 0 for w in array)):
                raise ConfigError("class_weights must be a 1-D list of finite, non-negative "
                                 f"numbers (one per class), got {class_weights!r}")
            class_weights = [float(w) for w in array]
        self.class_weights = class_weights

    def call(self, y_true, y_pred):
        total, weight = self.terms(y_true, y_pred)
        return self.combine(total, weight)

    def combine(self, total, weight):
        """The loss from `terms` (summed over replicas, or not): total / weight, with the
        divisor of each form kept from 0 (1 for a batch with nothing to count)."""
        if self.class_weights is not None:
            return total / safe_weight_total(weight)
        return total / ops.maximum(weight, 1.0)

    def terms(self, y_true, y_pred):
        """(sum of the counted pixels' (weighted) losses, sum of their weights).

        The loss is `combine(total, weight)`; a step on several replicas sums the
        weights over the replicas first, so the replicas' losses add up to the global
        batch's. OHEM selects the hard pixels (and its `min_kept` floor) on each
        replica's share of the batch.
        """
        weights = self.class_weights
        if weights is not None:
            classes = y_pred.shape[-1]
            if classes is not None and classes != len(weights):
                raise ConfigError(f"{len(weights)} class weights for logits of {classes} "
                                 "classes; pass one weight per class")
        if self.mode == "ohem":
            return ohem_terms(y_true, y_pred, self.ignore_label, self.threshold,
                              self.min_kept, weights)
        if weights is not None:
            loss, _ = per_pixel_cross_entropy(y_true, y_pred, self.ignore_label)
            pixel = pixel_class_weights(y_true, weights, self.ignore_label)
            return ops.sum(loss * pixel), ops.sum(pixel)
        return masked_cross_entropy_terms(y_true, y_pred, self.ignore_label)

    def get_config(self):
        config = super().get_config()
        config.update({"mode": self.mode, "ignore_label": self.ignore_label,
                       "threshold": self.threshold, "min_kept": self.min_kept,
                       "class_weights": self.class_weights})
        return config
