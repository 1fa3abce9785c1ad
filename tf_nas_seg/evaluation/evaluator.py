"""Scores a model on a data split: mIoU, per-class IoU, accuracy, confusion, overlays."""

import os
import time

import numpy as np
import tensorflow as tf

from tf_nas_seg.evaluation.metrics import confusion_metric, scores_from_confusion
from tf_nas_seg.viz.figures import draw_prediction
from tf_nas_seg.errors import ConfigError
from tf_nas_seg.utils.progress import ProgressBar


def evaluate_source(predictor, source, *, batch_size=1, flip=False, scales=(1.0,),
                    size=None, max_images=0, overlays=0, overlay_dir=None,
                    progress=True):
    """Evaluates `predictor` on every image of `source` at the labels' resolution.

    Labels are never resampled: with `size` (or `scales`) the network runs on resized
    images and its probabilities are resized back to the label size before scoring.

    Args:
        predictor: A `Predictor` (or anything with `.predict(images, flip, scales, size)`
            returning probabilities).
        source: A `SegmentationSource`.
        batch_size: Images per forward pass (1 when image sizes differ).
        flip: Horizontal-flip test-time augmentation.
        scales: Multi-scale test-time augmentation factors.
        size: (height, width) to run the network at; None = native.
        max_images: Evaluate only the first N images; 0 = all.
        overlays: Draw this many image | truth | prediction PNGs.
        overlay_dir: Where the overlays go.
        progress: Show a progress bar.

    Returns:
        The scores dict of `scores_from_confusion` plus num_images, seconds and
        overlay paths.
    """
    from tf_nas_seg.data import make_dataset

    info = source.info
    if max_images:
        source = source.subset(np.arange(min(max_images, len(source))))
    if source.image_size is None:
        batch_size = 1
    dataset = make_dataset(source, batch_size=batch_size, seed=0, shuffle=False,
                           augment=None, drop_remainder=False)
    metric = confusion_metric(info.num_classes, info.ignore_label)
    bar = ProgressBar(len(source), unit_name="image") if progress else None
    paths, seen, start = [], 0, time.time()
    for images, labels in dataset:
        probabilities = predictor.predict(images, flip=flip, scales=scales, size=size)
        if probabilities.shape[-1] != info.num_classes:
            raise ConfigError(f"the model predicts {probabilities.shape[-1]} classes but "
                             f"{info.name} has {info.num_classes}; evaluate it on the data "
                             "set it was trained for")
        predictions = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        metric.update_state(labels, predictions)
        for i in range(int(images.shape[0])):
            if seen + i < overlays and overlay_dir:
                index = seen + i
                single = confusion_metric(info.num_classes, info.ignore_label)
                single.update_state(labels[i], predictions[i])
                miou = scores_from_confusion(single.total_cm.numpy())["miou"]
                paths.append(draw_prediction(
                    images[i].numpy(), labels[i].numpy(), predictions[i].numpy(), info,
                    os.path.join(overlay_dir, f"prediction_{index:03d}.png"),
                    title=f"{source.names[index]}  (image mIoU {miou:.3f})"))
        seen += int(images.shape[0])
        if bar is not None:
            bar.update(seen)
    scores = scores_from_confusion(metric.total_cm.numpy(), info.class_names)
    scores.update({"num_images": seen, "seconds": round(time.time() - start, 2),
                   "overlays": paths})
    return scores
