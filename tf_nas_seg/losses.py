"""Segmentation cross-entropies that ignore the ignore label, optionally class-weighted.

The one copy of the per-pixel loss that search (`BilevelSearchModel`) and training
(`SegmentationLoss`, OHEM) both use. Weighted losses are the weighted mean
sum(w * loss) / sum(w) over the pixels that count, as PyTorch's
`CrossEntropyLoss(weight=...)` computes it with mean reduction.
"""

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


def pixel_class_weights(labels, class_weights, ignore_label=255):
    """The weight of every pixel's true class; 0 at ignored pixels.

    Args:
        labels: [B, H, W] int class ids, `ignore_label` where unlabelled.
        class_weights: [K] weights (a list or array), one per class.
        ignore_label: Label value excluded.

    Returns:
        [B, H, W] float32.
    """
    labels = ops.cast(labels, "int32")
    valid = ops.not_equal(labels, ignore_label)
    safe = ops.where(valid, labels, ops.zeros_like(labels))
    weights = ops.take(ops.convert_to_tensor(class_weights, "float32"), safe)
    return ops.where(valid, weights, ops.zeros_like(weights))


def weighted_mean(values, weights):
    """sum(w * v) / sum(w); 0 when the weights sum to 0 (no NaN, in value or gradient)."""
    total = ops.sum(weights)
    safe_total = ops.where(ops.greater(total, 0.0), total, ops.ones_like(total))
    return ops.sum(values * weights) / safe_total


def weighted_cross_entropy(labels, logits, class_weights, ignore_label=255):
    """Class-weighted mean cross-entropy over the labelled pixels.

    sum_i w[y_i] * CE_i / sum_i w[y_i] over the pixels i whose label is not ignored
    (PyTorch's `CrossEntropyLoss(weight=w, ignore_index=...)`, mean reduction).

    Args:
        labels: [B, H, W] int class ids.
        logits: [B, H, W, K] logits.
        class_weights: [K] class weights.
        ignore_label: Label value excluded.

    Returns:
        Scalar float32 loss; 0 for a batch without labelled pixels (or whose labelled
        pixels all have weight 0).
    """
    loss, _ = per_pixel_cross_entropy(labels, logits, ignore_label)
    return weighted_mean(loss, pixel_class_weights(labels, class_weights, ignore_label))


def masked_cross_entropy_terms(labels, logits, ignore_label=255):
    """(sum of the per-pixel cross-entropies, number of labelled pixels) of a batch.

    The mean is their quotient; a step on several replicas divides each replica's sum
    by the count of the global batch, so the replicas' losses add up to the global mean.

    Returns:
        (float32 scalar, float32 scalar).
    """
    loss, valid = per_pixel_cross_entropy(labels, logits, ignore_label)
    return ops.sum(loss), ops.sum(ops.cast(valid, "float32"))


def masked_cross_entropy(labels, logits, ignore_label=255):
    """Mean softmax cross-entropy over the pixels whose label is not `ignore_label`.

    Args:
        labels: [B, H, W] int class ids, `ignore_label` where unlabelled.
        logits: [B, H, W, K] float logits (computed in float32).
        ignore_label: Label value excluded from the loss.

    Returns:
        Scalar float32 loss; 0 for a batch with no valid pixel.
    """
    total, count = masked_cross_entropy_terms(labels, logits, ignore_label)
    return total / ops.maximum(count, 1.0)
