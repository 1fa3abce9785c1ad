"""Segmentation losses that ignore the ignore label."""

from keras import ops


def masked_cross_entropy(labels, logits, ignore_label=255):
    """Mean softmax cross-entropy over the pixels whose label is not `ignore_label`.

    Args:
        labels: [B, H, W] int class ids, `ignore_label` where unlabelled.
        logits: [B, H, W, K] float logits.
        ignore_label: Label value excluded from the loss.

    Returns:
        Scalar loss; 0 for a batch with no valid pixel.
    """
    labels = ops.cast(labels, "int32")
    valid = ops.not_equal(labels, ignore_label)
    safe = ops.where(valid, labels, ops.zeros_like(labels))
    logits = ops.cast(logits, "float32")
    per_pixel = ops.sparse_categorical_crossentropy(safe, logits, from_logits=True)
    weights = ops.cast(valid, "float32")
    return ops.sum(per_pixel * weights) / ops.maximum(ops.sum(weights), 1.0)
