"""Colouring of label maps and predictions for figures and logs."""

import numpy as np

from tf_nas_seg.data.dataset_info import DatasetInfo
from tf_nas_seg.errors import ConfigError


def colorize(label, info: DatasetInfo) -> np.ndarray:
    """Maps train ids to the data set's palette colours.

    Args:
        label: Integer array (or tensor) of train ids, any shape; the ignore label
            is drawn black.
        info: The data set whose palette to use.

    Returns:
        uint8 array of shape `label.shape + (3,)`.

    Raises:
        ValueError: If a value is neither a class nor the ignore label.
    """
    label = np.asarray(label)
    lut = np.zeros((256, 3), np.uint8)
    lut[:info.num_classes] = np.asarray(info.palette, np.uint8)
    valid = (label >= 0) & ((label < info.num_classes) | (label == info.ignore_label))
    if not valid.all():
        raise ConfigError(f"label values {np.unique(label[~valid])[:5].tolist()} are not "
                         f"classes of {info.name} (0-{info.num_classes - 1}) nor the "
                         f"ignore label {info.ignore_label}")
    return lut[label.astype(np.int64)]
