"""Data sets by name, for command lines and configs."""

import os

from tf_nas_seg.data.camvid import load_camvid
from tf_nas_seg.data.cityscapes import load_cityscapes, load_cityscapes_tfds
from tf_nas_seg.data.dataset_info import CAMVID, CITYSCAPES, DatasetInfo, synthetic_info
from tf_nas_seg.data.errors import DatasetError
from tf_nas_seg.data.segmentation_source import DEFAULT_CACHE_BYTES, SegmentationSource
from tf_nas_seg.data.synthetic import make_street_scenes

from tf_nas_seg.datasets import DATASET_NAMES

_ROOT_HELP = {
    "camvid": "the SegNet CamVid folder holding train.txt and val.txt",
    "cityscapes": "the folder leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip "
                  "were extracted into",
    "cityscapes_tfds": "the folder holding leftImg8bit_trainvaltest.zip and "
                       "gtFine_trainvaltest.zip",
}


def get_source(name: str, root: str | os.PathLike | None = None, split: str = "train",
               **kwargs) -> SegmentationSource:
    """Loads split `split` of the data set called `name`.

    Args:
        name: One of `DATASET_NAMES`.
        root: Data set folder; ignored for "synthetic". For "cityscapes_tfds" it
            is the manual_dir holding the downloaded zips (pass `data_dir=` for
            tfds' prepared-data folder).
        split: Split name ("train", "val", ...). For "synthetic", any name: each
            gives its own images.
        **kwargs: Passed on to the loader: `make_street_scenes` (num_images,
            height, width, num_classes, seed), `load_camvid` / `load_cityscapes`
            (cache_max_bytes), `load_cityscapes_tfds` (data_dir, image_size,
            max_bytes).

    Returns:
        The split.

    Raises:
        DatasetError: For an unknown name, a missing root, or any loader error.
    """
    if name not in DATASET_NAMES:
        raise DatasetError(f"unknown data set {name!r}; choose one of "
                           f"{', '.join(DATASET_NAMES)}")
    if name == "synthetic":
        return make_street_scenes(split=split, **kwargs)
    if root is None and name != "cityscapes_tfds":
        raise DatasetError(f"data set {name!r} needs a root: {_ROOT_HELP[name]} (valid data "
                           f"sets: {', '.join(DATASET_NAMES)}; 'synthetic' needs none)")
    if name == "camvid":
        return load_camvid(root, split, **kwargs)
    if name == "cityscapes":
        return load_cityscapes(root, split, **kwargs)
    return load_cityscapes_tfds(kwargs.pop("data_dir", None), root, split, **kwargs)


def open_split(name: str, data_dir: str | None, split: str, *, tfds_manual_dir: str = "",
               image_size: tuple[int, int] | None = None,
               tfds_max_gib: float = DEFAULT_CACHE_BYTES / 2**30,
               skip_bad: bool = False) -> SegmentationSource:
    """One split of a real data set, as the command-line tools name it.

    One place maps the tools' flags to the loaders, so search, training and evaluation
    read a data set the same way:

    - "camvid", "cityscapes": `data_dir` is the data set's folder.
    - "cityscapes_tfds": `tfds_manual_dir` holds the two downloaded zips and
      `data_dir` (optional) is where tensorflow-datasets keeps its prepared copy. The
      split is held in memory, so it is resized to `image_size` while it is read (when
      given) and refused when larger than `tfds_max_gib`.

    Args:
        name: "camvid", "cityscapes" or "cityscapes_tfds".
        data_dir: See above; "" counts as not given.
        split: Split name.
        tfds_manual_dir: For "cityscapes_tfds", the zips' folder.
        image_size: For "cityscapes_tfds", the (height, width) to store; None keeps
            1024x2048.
        tfds_max_gib: For "cityscapes_tfds", the most memory the split may take.
        skip_bad: Leave bad examples out (counted in the source's `skipped`) instead of
            raising (--skip_bad_examples); see `load_camvid` and `load_cityscapes`.

    Raises:
        DatasetError: For a missing folder or any loader error.
    """
    if name == "cityscapes_tfds":
        return get_source(name, tfds_manual_dir or None, split, data_dir=data_dir or None,
                          image_size=tuple(image_size) if image_size else None,
                          max_bytes=int(tfds_max_gib * 2**30), skip_bad=skip_bad)
    if name == "synthetic":
        raise DatasetError("open_split reads data sets from disk; 'synthetic' is generated "
                           "(make_street_scenes)")
    if not data_dir:
        raise DatasetError(f"--dataset={name} needs --data_dir: {_ROOT_HELP[name]}")
    return get_source(name, data_dir, split, skip_bad=skip_bad)


def get_info(name: str, num_classes: int | None = None) -> DatasetInfo:
    """The `DatasetInfo` of data set `name` without loading any data.

    Args:
        name: One of `DATASET_NAMES`.
        num_classes: For "synthetic" only: the class count (default 11).

    Returns:
        The description of the classes.

    Raises:
        DatasetError: For an unknown name.
    """
    if name == "synthetic":
        return synthetic_info(num_classes or 11)
    if name == "camvid":
        return CAMVID
    if name in ("cityscapes", "cityscapes_tfds"):
        return CITYSCAPES
    raise DatasetError(f"unknown data set {name!r}; choose one of {', '.join(DATASET_NAMES)}")
