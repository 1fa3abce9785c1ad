"""Online bootstrapped (OHEM) cross-entropy for segmentation, ignoring the ignore label."""

import keras
from keras import ops


def per_pixel_cross_entropy(labels, logits, ignore_label=255):
    """Softmax cross-entropy of every pixel, and the mask of pixels that count.

    Args:
        labels: [B, H, W] int class ids, `ignore_label` where unlabelled.
        logits: [B, H, W, K] logits (any float dtype; computed in float32).
        ignore_label: Label value excluded.

    Returns:
        (loss [B, H, W] float32 with 0 at ignored pixels, valid [B, H, W] bool).
    """
    labels = ops.cast(labels, "int32")
    valid = ops.not_equal(labels, ignore_label)
    safe = ops.where(valid, labels, ops.zeros_like(labels))
    loss = ops.sparse_categorical_crossentropy(safe, ops.cast(logits, "float32"),
                                               from_logits=True)
    return ops.where(valid, loss, ops.zeros_like(loss)), valid


def ohem_cross_entropy(labels, logits, ignore_label=255, threshold=0.7, min_kept=0.0625):
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

    Returns:
        Scalar float32 loss; 0 for a batch without labelled pixels.
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
    return ops.sum(flat * weights) / ops.maximum(ops.sum(weights), 1.0)


@keras.saving.register_keras_serializable(package="tf_nas_seg")
class SegmentationLoss(keras.losses.Loss):
    """Cross-entropy for dense labels, plain or OHEM, ignoring the ignore label.

    Args:
        mode: "ohem" or "ce".
        ignore_label: Label value excluded.
        threshold: OHEM hardness threshold on the true-class probability.
        min_kept: OHEM fraction of labelled pixels always kept.
    """

    def __init__(self, mode="ohem", ignore_label=255, threshold=0.7, min_kept=0.0625,
                 name="segmentation_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        if mode not in ("ohem", "ce"):
            raise ValueError(f"mode must be 'ohem' or 'ce', got {mode!r}")
        if not 0 < threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        if not 0 <= min_kept <= 1:
            raise ValueError(f"min_kept must be in [0, 1], got {min_kept}")
        self.mode, self.ignore_label = mode, int(ignore_label)
        self.threshold, self.min_kept = float(threshold), float(min_kept)

    def call(self, y_true, y_pred):
        if self.mode == "ohem":
            return ohem_cross_entropy(y_true, y_pred, self.ignore_label, self.threshold,
                                      self.min_kept)
        loss, valid = per_pixel_cross_entropy(y_true, y_pred, self.ignore_label)
        valid = ops.cast(valid, "float32")
        return ops.sum(loss) / ops.maximum(ops.sum(valid), 1.0)

    def get_config(self):
        config = super().get_config()
        config.update({"mode": self.mode, "ignore_label": self.ignore_label,
                       "threshold": self.threshold, "min_kept": self.min_kept})
        return config
