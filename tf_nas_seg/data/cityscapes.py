"""Cityscapes fine annotations: the extracted raw layout, or tensorflow-datasets.

The CAS paper splits the train set by city for architecture search and never
touches the official val split during search; the split names here are the
official ones ("train", "val", "test"), and choosing the search halves is
`search_split`'s job.
"""

import os
from pathlib import Path

import numpy as np

from tf_nas_seg.data.dataset_info import CITYSCAPES
from tf_nas_seg.data.errors import DatasetError
from tf_nas_seg.data.label_encoding import LabelEncoding
from tf_nas_seg.data.segmentation_source import (DEFAULT_CACHE_BYTES, SegmentationSource,
                                                 no_good_examples, skipped_record,
                                                 with_skip_hint)

CITYSCAPES_SPLITS = ("train", "val", "test")

# labelId -> trainId for the 19 evaluated classes (cityscapesScripts labels.py).
LABEL_ID_TO_TRAIN_ID = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9,
                        23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17,
                        33: 18}

# Every other labelId (0-33) is ignored; license plates (id -1) are stored as 255.
CITYSCAPES_ENCODING = LabelEncoding.from_mapping(
    LABEL_ID_TO_TRAIN_ID,
    [i for i in range(34) if i not in LABEL_ID_TO_TRAIN_ID] + [255],
    description="Cityscapes gtFine labelIds are 0-33 (255 for license plates)",
    fix=("use the *_gtFine_labelIds.png files, not *_color.png or *_instanceIds.png, "
         "and check that --dataset matches the data"))

_IMAGE_SUFFIX = "_leftImg8bit.png"
_LABEL_SUFFIX = "_gtFine_labelIds.png"
_ZIPS = ("leftImg8bit_trainvaltest.zip", "gtFine_trainvaltest.zip")


def load_cityscapes(root: str | os.PathLike, split: str = "train", *,
                    cache_max_bytes: int | None = DEFAULT_CACHE_BYTES,
                    skip_bad: bool = False) -> SegmentationSource:
    """Loads one split of Cityscapes from the extracted official zips.

    Layout: `root/leftImg8bit/{split}/{city}/{id}_leftImg8bit.png` and
    `root/gtFine/{split}/{city}/{id}_gtFine_labelIds.png`. labelIds are mapped to
    the 19 trainIds inside the graph; everything else becomes 255. Examples are
    ordered by city, then file name; the group of each example is its city.

    Args:
        root: The folder both zips were extracted into.
        split: "train", "val" or "test" (test labels are not public: all ignored).
        cache_max_bytes: Decode into memory when the split needs at most this
            many bytes. Full-resolution Cityscapes (23 GiB for train) exceeds the
            default and streams from disk.
        skip_bad: Leave out (and record in the source's `skipped`) an image without a
            label file and a pair that is unreadable, truncated, of mismatched sizes
            or holds invalid label values, instead of raising. A wrong layout or an
            empty split is still an error.

    Returns:
        The split.

    Raises:
        DatasetError: For a missing root or split directory, a layout other than
            city folders of *_leftImg8bit.png files, an image without a label file, an
            empty split, or invalid files.
    """
    root = Path(root)
    if split not in CITYSCAPES_SPLITS:
        raise DatasetError(f"unknown Cityscapes split {split!r}; choose one of "
                           f"{CITYSCAPES_SPLITS}")
    if not root.is_dir():
        raise DatasetError(f"Cityscapes root {root} is not a directory; extract "
                           f"{' and '.join(_ZIPS)} into one folder and pass that folder")
    image_dir = root / "leftImg8bit" / split
    label_dir = root / "gtFine" / split
    for folder, archive in ((image_dir, _ZIPS[0]), (label_dir, _ZIPS[1])):
        if not folder.is_dir():
            raise DatasetError(f"Cityscapes folder {folder} does not exist; extract "
                               f"{archive} into {root}")
    image_paths, label_paths, cities, skipped = [], [], [], []
    for city_dir in sorted(p for p in image_dir.iterdir() if p.is_dir()):
        for image_path in sorted(city_dir.glob(f"*{_IMAGE_SUFFIX}")):
            image_id = image_path.name[:-len(_IMAGE_SUFFIX)]
            label_path = label_dir / city_dir.name / f"{image_id}{_LABEL_SUFFIX}"
            if not label_path.is_file():
                error = DatasetError(
                    f"image {image_path} has no label file {label_path}"
                    f"{_label_hint(label_path)}; extract {_ZIPS[1]} into {root} (both zips "
                    "must come from the same release)")
                if not skip_bad:
                    raise with_skip_hint(error)
                skipped.append(skipped_record(image_path, label_path, error))
                continue
            image_paths.append(image_path)
            label_paths.append(label_path)
            cities.append(city_dir.name)
    if not image_paths and skipped:
        raise no_good_examples(f"Cityscapes {split}", skipped)
    if not image_paths:
        raise DatasetError(f"Cityscapes split folder {image_dir} holds no "
                           f"city/*{_IMAGE_SUFFIX} files{_layout_hint(image_dir)}; the "
                           f"split is empty: check the extraction of {_ZIPS[0]}")
    names = [p.name[:-len(_IMAGE_SUFFIX)] for p in image_paths]
    source = SegmentationSource.from_files(CITYSCAPES, image_paths, label_paths,
                                           encoding=CITYSCAPES_ENCODING, names=names,
                                           groups=cities, skip_bad=skip_bad, skipped=skipped)
    if cache_max_bytes or skip_bad:
        return source.cache_in_memory(cache_max_bytes or 0, skip_bad=skip_bad)
    return source


def _label_hint(label_path: Path) -> str:
    """What stands where a labelIds file should be, if anything (e.g. the colour maps)."""
    stem = label_path.name[:-len(_LABEL_SUFFIX)]
    others = sorted(p.name for p in label_path.parent.glob(f"{stem}_*"))
    if others:
        return (f" (found {', '.join(others[:3])}: the labelIds maps are the ones "
                "training reads)")
    return ""


def _layout_hint(image_dir: Path) -> str:
    """What the split folder holds instead of city/*_leftImg8bit.png (a wrong layout)."""
    loose = sorted(p.name for p in image_dir.glob("*.png"))
    if loose:
        return (f" (it holds {len(loose)} PNG files directly, e.g. {loose[0]}: images "
                f"must be in one folder per city, leftImg8bit/{image_dir.name}/CITY/"
                f"ID{_IMAGE_SUFFIX})")
    misnamed = sorted(p.name for p in image_dir.glob("*/*.png"))
    if misnamed:
        return (f" (its city folders hold {len(misnamed)} PNG files not named "
                f"*{_IMAGE_SUFFIX}, e.g. {misnamed[0]})")
    return ""


def load_cityscapes_tfds(data_dir: str | os.PathLike | None,
                         manual_dir: str | os.PathLike | None, split: str = "train", *,
                         image_size: tuple[int, int] | None = None,
                         max_bytes: int = DEFAULT_CACHE_BYTES,
                         skip_bad: bool = False) -> SegmentationSource:
    """Loads one split through the tensorflow-datasets `cityscapes` builder.

    The builder (config `semantic_segmentation`) prepares TFRecords from the two
    zips the user downloaded by hand into `manual_dir`. TFRecords can only be read
    sequentially, while `SegmentationSource.load` needs random access for per-epoch
    shuffling and exact mid-epoch resume; so the split is materialised in memory,
    optionally downscaled to `image_size` while it is read. That suits reduced
    resolutions (train at 256x512 takes 1.5 GiB); for full resolution, extract the
    zips and use `load_cityscapes`, which streams from files.

    tensorflow-datasets is an optional dependency, imported only here.

    Args:
        data_dir: Where tfds keeps prepared data sets (None: its default,
            `~/tensorflow_datasets`).
        manual_dir: Folder holding leftImg8bit_trainvaltest.zip and
            gtFine_trainvaltest.zip (None: tfds' default manual folder).
        split: "train", "val" or "test".
        image_size: `(height, width)` to resize to while reading (bilinear with
            antialiasing for images, nearest for labels), or None for 1024x2048.
        max_bytes: Refuse to materialise a split larger than this.
        skip_bad: Leave out (and record in `skipped`) an example whose label holds
            values outside the labelIds, instead of raising.

    Returns:
        An in-memory split with trainIds; groups are cities.

    Raises:
        DatasetError: If tensorflow-datasets is missing, the zips are not in
            `manual_dir`, the split is unknown, or it does not fit `max_bytes`.
    """
    try:
        import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise DatasetError(
            "the 'cityscapes_tfds' data set needs tensorflow-datasets, which is not "
            "installed; run `pip install tensorflow-datasets` (it does not pull in a "
            "second TensorFlow), or extract the zips and use the 'cityscapes' data set "
            "instead") from None
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    if split not in CITYSCAPES_SPLITS:
        raise DatasetError(f"unknown Cityscapes split {split!r}; choose one of "
                           f"{CITYSCAPES_SPLITS}")
    if manual_dir is not None:
        missing = [z for z in _ZIPS if not (Path(manual_dir) / z).is_file()]
        if missing:
            raise DatasetError(
                f"{', '.join(str(Path(manual_dir) / z) for z in missing)} not found; "
                f"download them from https://www.cityscapes-dataset.com (registration "
                f"required) into {manual_dir}")
    builder = tfds.builder("cityscapes/semantic_segmentation",
                           data_dir=None if data_dir is None else os.fspath(data_dir))
    try:
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
            manual_dir=None if manual_dir is None else os.fspath(manual_dir)))
    except AssertionError as error:  # the builder reports missing zips this way
        raise DatasetError(f"tensorflow-datasets could not prepare Cityscapes: {error}; "
                           f"put {' and '.join(_ZIPS)} into the manual_dir") from None
    num_examples = builder.info.splits[split].num_examples
    height, width = image_size or builder.info.features["image_left"].shape[:2]
    needed = num_examples * height * width * 4
    if needed > max_bytes:
        raise DatasetError(
            f"Cityscapes {split} at {height}x{width} needs {needed / 2**30:.1f} GiB in "
            f"memory, more than max_bytes={max_bytes / 2**30:.1f} GiB; pass a smaller "
            f"image_size, raise max_bytes, or extract the zips and use the 'cityscapes' "
            f"data set, which streams from disk")

    def convert(example):
        image, raw = example["image_left"], example["segmentation_label"]
        if image_size is not None:
            image = tf.image.resize(image, image_size, method="bilinear", antialias=True)
            raw = tf.image.resize(raw, image_size, method="nearest")
        image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
        return example["image_id"], image, tf.cast(raw[..., 0], tf.uint8)

    dataset = builder.as_dataset(split=split, shuffle_files=False).map(
        convert, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ids, images, raws = [], [], []
    for image_id, image, raw in dataset.as_numpy_iterator():
        ids.append(image_id.decode())
        images.append(image)
        raws.append(raw)
    if not ids:
        raise DatasetError(f"tensorflow-datasets returned no examples for Cityscapes "
                           f"{split!r}; delete the prepared copy under the data_dir and "
                           f"prepare it again from complete zips")
    # tfds' record order depends on sharding; sort so indices match load_cityscapes.
    order = sorted(range(len(ids)), key=lambda i: ids[i])
    table = CITYSCAPES_ENCODING.lookup_table()
    labels, good, skipped = [], [], []
    for i in order:
        bad = CITYSCAPES_ENCODING.first_invalid_value(raws[i])
        if bad is not None:
            error = DatasetError(
                f"label of {ids[i]} in the tfds copy under {builder.data_dir} has value "
                f"{bad} but {CITYSCAPES_ENCODING.description}; {CITYSCAPES_ENCODING.fix}")
            if not skip_bad:
                raise with_skip_hint(error)
            skipped.append(skipped_record(ids[i], ids[i], error))
            continue
        labels.append(table[raws[i]].astype(np.uint8))
        good.append(i)
    if not good:
        raise no_good_examples(f"Cityscapes {split} (tfds)", skipped)
    names = [ids[i] for i in good]
    source = SegmentationSource.from_arrays(
        CITYSCAPES, [images[i] for i in good], labels, names=names,
        groups=[name.rsplit("_", 2)[0] for name in names])
    source.skipped = tuple(skipped)
    return source
