"""CamVid in the SegNet layout: list files of "image label" pairs, 360x480 frames."""

import os
from pathlib import Path

from tf_nas_seg.data.dataset_info import CAMVID
from tf_nas_seg.data.errors import DatasetError
from tf_nas_seg.data.label_encoding import LabelEncoding
from tf_nas_seg.data.segmentation_source import (DEFAULT_CACHE_BYTES, SegmentationSource,
                                                 skipped_record, with_skip_hint)

CAMVID_SPLITS = ("train", "val", "test")

# Raw ids 0-10 are the classes in train-id order; 11 is void. Some conversions of
# CamVid write void as 255, which is accepted as well.
CAMVID_ENCODING = LabelEncoding.from_mapping(
    {i: i for i in range(CAMVID.num_classes)}, [11, 255],
    description="CamVid has 11 classes (0-10) plus void 11",
    fix=("check that --dataset matches the data, or that the label maps are the SegNet "
         "'annot' images, not colour images"))


def load_camvid(root: str | os.PathLike, split: str = "train", *,
                cache_max_bytes: int | None = DEFAULT_CACHE_BYTES,
                skip_bad: bool = False) -> SegmentationSource:
    """Loads one split of CamVid from the SegNet layout.

    `root/{split}.txt` lists one "image label" pair per line, with paths relative
    to `root` (absolute paths of the original SegNet lists, such as
    `/SegNet/CamVid/train/x.png`, are resolved by their last two components). The
    group of each frame is its driving sequence, the file-name text before the
    first "_" (e.g. "0016E5").

    Args:
        root: The CamVid folder (holding train.txt, train/, trainannot/, ...).
        split: "train", "val" or "test".
        cache_max_bytes: Decode the split into memory when it needs at most this
            many bytes (CamVid train needs 0.25 GiB); None keeps it on disk.
        skip_bad: Leave out (and record in the source's `skipped`) a malformed list
            line, a line naming a missing file, and a pair that is unreadable,
            truncated, of mismatched sizes or holds label values outside the classes,
            instead of raising. A missing root or list file, or an empty list, is
            still an error.

    Returns:
        The split, with void (11) mapped to the ignore label 255.

    Raises:
        DatasetError: For a missing root or list file, a malformed line, a listed
            file that does not exist, an empty list, or invalid label files.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(
            f"CamVid root {root} is not a directory; pass the folder holding train.txt, "
            f"val.txt, train/ and trainannot/ (the SegNet CamVid layout)")
    if split not in CAMVID_SPLITS:
        raise DatasetError(f"unknown CamVid split {split!r}; choose one of {CAMVID_SPLITS}")
    list_file = root / f"{split}.txt"
    if not list_file.is_file():
        present = sorted(p.stem for p in root.glob("*.txt"))
        raise DatasetError(
            f"CamVid list file {list_file} does not exist (lists present: {present}); "
            f"each split needs a {split}.txt with one 'image label' pair per line")
    image_paths, label_paths, skipped = [], [], []
    for number, line in enumerate(list_file.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        try:
            if len(fields) != 2:
                raise DatasetError(f"{list_file} line {number}: expected 'image label', "
                                   f"got {line!r}; fix or remove the line")
            pair = (_resolve(root, fields[0], list_file, number),
                    _resolve(root, fields[1], list_file, number))
        except DatasetError as error:
            if not skip_bad:
                raise with_skip_hint(error) from None
            skipped.append(skipped_record(fields[0], fields[-1], error))
            continue
        image_paths.append(pair[0])
        label_paths.append(pair[1])
    if not image_paths and not skipped:
        raise DatasetError(f"CamVid list file {list_file} lists no examples; the split "
                           f"{split!r} is empty: regenerate the list")
    if not image_paths:
        raise DatasetError(f"every line of {list_file} is bad ({len(skipped)} skipped; the "
                           f"first: {skipped[0]['error']}); fix the list")
    names = [p.stem for p in image_paths]
    source = SegmentationSource.from_files(
        CAMVID, image_paths, label_paths, encoding=CAMVID_ENCODING, names=names,
        groups=[name.split("_")[0] for name in names], skip_bad=skip_bad, skipped=skipped)
    if cache_max_bytes or skip_bad:
        return source.cache_in_memory(cache_max_bytes or 0, skip_bad=skip_bad)
    return source


def _resolve(root: Path, entry: str, list_file: Path, number: int) -> Path:
    """Resolves one path of a list file, or says which line names a missing file."""
    path = Path(entry) if os.path.isabs(entry) else root / entry
    if not path.is_file() and os.path.isabs(entry):
        path = root.joinpath(*Path(entry).parts[-2:])
    if not path.is_file():
        raise DatasetError(
            f"{list_file} line {number} names {entry}, but {path} does not exist; check "
            f"that {root} is the folder the list's paths are relative to and that the "
            f"data set was extracted completely")
    return path
