"""Segmentation scores from a confusion matrix accumulated by Keras's MeanIoU metric."""

import keras
import numpy as np


def confusion_metric(num_classes, ignore_label=255, name="miou"):
    """A Keras MeanIoU over class-id predictions that skips the ignore label.

    float64 accumulation keeps the counts exact (float32 would round once a class
    covers more than 2**24 pixels, i.e. on a few dozen Cityscapes frames).
    """
    return keras.metrics.MeanIoU(num_classes, ignore_class=ignore_label, sparse_y_true=True,
                                 sparse_y_pred=True, dtype="float64", name=name)


def scores_from_confusion(confusion, class_names=None):
    """IoU per class, mean IoU, pixel accuracy from a [true, predicted] count matrix.

    A class that occurs neither in the labels nor in the predictions has no IoU (None)
    and is left out of the mean, as the Cityscapes and CamVid benchmarks do.

    Args:
        confusion: [K, K] counts, rows = true class, columns = predicted class.
        class_names: Optional names of the K classes.

    Returns:
        A dict with miou, per_class_iou ({name: iou or None}), pixel_accuracy,
        labelled_pixels and confusion_matrix (nested lists of ints).
    """
    confusion = np.asarray(confusion, dtype=np.float64)
    tp = np.diag(confusion)
    denominator = confusion.sum(axis=0) + confusion.sum(axis=1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(denominator > 0, tp / denominator, np.nan)
    total = confusion.sum()
    names = list(class_names) if class_names else [str(i) for i in range(len(tp))]
    present = ~np.isnan(iou)
    return {
        "miou": float(np.mean(iou[present])) if present.any() else 0.0,
        "per_class_iou": {n: (None if np.isnan(v) else float(v)) for n, v in zip(names, iou)},
        "pixel_accuracy": float(tp.sum() / total) if total else 0.0,
        "labelled_pixels": int(total),
        "confusion_matrix": confusion.astype(np.int64).tolist(),
    }
