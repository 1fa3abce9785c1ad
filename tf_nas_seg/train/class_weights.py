"""Class-balancing loss weights from the label statistics of a training split.

Two recipes, both computed once from the labels as stored (before augmentation),
ignore-label pixels never counted:

* `median_frequency` (Eigen & Fergus 2015; the SegNet CamVid recipe):
  freq(c) = pixels of class c / labelled pixels of the training images in which c
  appears, and weight(c) = median_c' freq(c') / freq(c), the median taken over the
  classes that appear.
* `enet` (Paszke et al. 2016): p(c) = pixels of c / all labelled pixels, and
  weight(c) = 1 / ln(1.02 + p(c)).

A class that never appears in the split gets weight 0 under both (its weight could
never multiply a training pixel anyway), and a warning names it.

The counting is one `tf.data` pass with a vectorised bincount per image; the
arithmetic is float64 NumPy on int64 counts.
"""

import math

import numpy as np
import tensorflow as tf
from absl import logging

from tf_nas_seg.data.errors import DatasetError
from tf_nas_seg.errors import ConfigError

METHODS = ("none", "median_frequency", "enet")
# The constant c of ENet's 1 / ln(c + p): weights are bounded by 1 / ln(1.02) ~ 50.5.
ENET_C = 1.02
FILE_NAME = "class_weights.json"


def count_label_pixels(source, batch_size=32):
    """Per-class pixel statistics of a split's labels, at their stored resolution.

    Args:
        source: A SegmentationSource (in memory or file-backed).
        batch_size: Images whose per-class counts are reduced together.

    Returns:
        dict of int64 NumPy arrays of length num_classes:
        `pixels` (pixels of each class), `present_pixels` (labelled pixels of the
        images in which the class appears), `images` (images in which it appears);
        and the ints `labelled_pixels` (all labelled pixels) and `num_images`.
    """
    k = source.info.num_classes

    def per_image(index):
        _, label = source.load(index)
        # Train ids are 0..k-1 and the ignore label is in k..255 (DatasetInfo checks),
        # so 256 bins hold every value and the first k are exactly the classes.
        counts = tf.math.bincount(tf.reshape(tf.cast(label, tf.int32), [-1]),
                                  minlength=256, maxlength=256, dtype=tf.int64)[:k]
        return counts, tf.reduce_sum(counts)

    dataset = (tf.data.Dataset.range(len(source))
               .map(per_image, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
               .batch(batch_size)
               .prefetch(tf.data.AUTOTUNE))
    pixels = np.zeros(k, np.int64)
    present_pixels = np.zeros(k, np.int64)
    images = np.zeros(k, np.int64)
    for counts, labelled in dataset.as_numpy_iterator():
        present = counts > 0
        pixels += counts.sum(axis=0)
        present_pixels += (present * labelled[:, None]).sum(axis=0)
        images += present.sum(axis=0)
    return {"pixels": pixels, "present_pixels": present_pixels, "images": images,
            "labelled_pixels": int(pixels.sum()), "num_images": len(source)}


def median_frequency_weights(pixels, present_pixels):
    """(freq, weight) float64 arrays of the median-frequency recipe; absent classes: 0."""
    pixels = np.asarray(pixels, np.int64)
    present_pixels = np.asarray(present_pixels, np.int64)
    seen = pixels > 0
    freq = np.zeros(pixels.shape, np.float64)
    freq[seen] = pixels[seen] / present_pixels[seen]
    weights = np.zeros(pixels.shape, np.float64)
    if seen.any():
        weights[seen] = np.median(freq[seen]) / freq[seen]
    return freq, weights


def enet_weights(pixels):
    """(p, weight) float64 arrays of ENet's 1 / ln(1.02 + p); absent classes: weight 0."""
    pixels = np.asarray(pixels, np.int64)
    total = pixels.sum()
    p = pixels / total if total else np.zeros(pixels.shape, np.float64)
    weights = np.where(pixels > 0, 1.0 / np.log(ENET_C + p), 0.0)
    return p.astype(np.float64), weights.astype(np.float64)


def compute_class_weights(source, method, split=""):
    """Counts a split's labels and returns the class-weights record (JSON-able dict).

    Args:
        source: The training SegmentationSource.
        method: "median_frequency" or "enet".
        split: Name of the split, recorded in the result.

    Returns:
        dict with `method`, `dataset`, `split`, `num_images`, `ignore_label`,
        `labelled_pixels`, `frequency` (what `frequencies` means), and one entry per
        class in the lists `class_names`, `pixel_counts`, `images_present`,
        `present_image_pixels`, `frequencies` and `weights`; `absent_classes` names
        the classes that never appear (weight 0).

    Raises:
        ValueError: For an unknown method.
        DatasetError: If the split has no labelled pixel.
    """
    if method not in METHODS[1:]:
        raise ConfigError(f"class-weight method must be one of {list(METHODS[1:])}, got "
                         f"{method!r}")
    info = source.info
    stats = count_label_pixels(source)
    if not stats["labelled_pixels"]:
        raise DatasetError(f"the {split or info.name} split has no labelled pixel (all are "
                           f"{info.ignore_label}); class weights cannot be computed: use "
                           "--class_weights=none or check the labels")
    if method == "median_frequency":
        freq, weights = median_frequency_weights(stats["pixels"], stats["present_pixels"])
        meaning = ("pixels of the class / labelled pixels of the images in which it "
                   "appears; weight = median frequency / frequency")
    else:
        freq, weights = enet_weights(stats["pixels"])
        meaning = "pixels of the class / all labelled pixels; weight = 1 / ln(1.02 + p)"
    absent = [name for name, n in zip(info.class_names, stats["pixels"]) if n == 0]
    for name in absent:
        logging.warning("class %r never appears in the %s split: its %s class weight is 0",
                        name, split or info.name, method)
    return {
        "method": method, "dataset": info.name, "split": split,
        "num_images": stats["num_images"], "ignore_label": info.ignore_label,
        "labelled_pixels": stats["labelled_pixels"], "frequency": meaning,
        "class_names": list(info.class_names),
        "pixel_counts": [int(n) for n in stats["pixels"]],
        "images_present": [int(n) for n in stats["images"]],
        "present_image_pixels": [int(n) for n in stats["present_pixels"]],
        "frequencies": [float(f) for f in freq],
        "weights": [float(w) for w in weights],
        "absent_classes": absent,
    }


def check_class_weights(record, method, class_names, path=""):
    """Validates a record read back from a class_weights.json; returns its weights.

    Raises:
        ValueError: The record is not for this method and these classes, or holds
            weights that are not finite and non-negative.
    """
    where = f"{path}: " if path else ""
    if not isinstance(record, dict) or record.get("method") != method:
        got = record.get("method") if isinstance(record, dict) else record
        raise ConfigError(f"{where}class weights of method {got!r}, but this run uses "
                         f"{method!r}")
    if list(record.get("class_names", ())) != list(class_names):
        raise ConfigError(f"{where}class weights for classes {record.get('class_names')}, "
                         f"but the data set has {list(class_names)}")
    weights = record.get("weights")
    if (not isinstance(weights, list) or len(weights) != len(class_names)
            or not all(isinstance(w, (int, float)) and math.isfinite(w) and w >= 0
                       for w in weights)):
        raise ConfigError(f"{where}'weights' must be {len(class_names)} finite, "
                         f"non-negative numbers, got {weights!r}")
    return [float(w) for w in weights]


def describe(record):
    """One log line: `name=weight` for every class."""
    return ", ".join(f"{name}={weight:.4f}"
                     for name, weight in zip(record["class_names"], record["weights"]))
