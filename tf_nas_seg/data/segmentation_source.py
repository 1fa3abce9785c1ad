"""A finite, indexable split of a segmentation data set, in memory or on disk."""

import abc
import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
from PIL import Image, UnidentifiedImageError

from tf_nas_seg.data.dataset_info import DatasetInfo
from tf_nas_seg.data.errors import DatasetError
from tf_nas_seg.data.label_encoding import LabelEncoding
from tf_nas_seg.errors import ConfigError

# Decoded bytes a file-backed split may occupy once cached (image RGB + label byte
# per pixel). 2 GiB holds CamVid (367 train frames at 360x480 take 0.25 GiB) and
# keeps full-resolution Cityscapes (2975 x 1024 x 2048 x 4 B = 23 GiB) on disk.
DEFAULT_CACHE_BYTES = 2 * 1024**3

# Every conforming PNG ends with an empty IEND chunk: zero length, the tag, its CRC.
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"

# What a bad example's error adds when examples are not being skipped.
SKIP_HINT = ("; or pass --skip_bad_examples (skip_bad=True) to leave such examples out "
             "and count them")


def with_skip_hint(error: DatasetError) -> DatasetError:
    """`error` with the --skip_bad_examples hint appended (once)."""
    message = str(error)
    return error if SKIP_HINT in message else DatasetError(message + SKIP_HINT)


def skipped_record(image_path, label_path, error) -> dict:
    """One entry of a source's `skipped` list: the pair and why it was left out."""
    return {"image": os.fspath(image_path), "label": os.fspath(label_path),
            "error": str(error)}


def no_good_examples(what: str, skipped: Sequence[dict]) -> DatasetError:
    """The error when --skip_bad_examples left nothing of a split."""
    first = skipped[0]["error"] if skipped else ""
    return DatasetError(f"every example of {what} is bad ({len(skipped)} skipped; the "
                        f"first: {first}); fix the data set")


class SegmentationSource:
    """A split of (image, label) pairs with random access by example index.

    Two backings sit behind one interface:

    * in memory: all examples as tensors, stacked into `[N, H, W, 3]` /
      `[N, H, W]` when they share one size, packed into one flat buffer with
      offsets otherwise (so that `load` stays a pure graph op either way);
    * files: image and label paths, decoded with `tf.io` inside the graph.

    `load(index)` is graph-compatible, so a `tf.data` pipeline can shuffle and skip
    at the index level (exact resume) and decode only what it needs. Labels come
    out mapped to train ids with the ignore label 255, whatever the encoding on
    disk. Build instances with `from_arrays` or `from_files` (or a data set
    loader); `cache_in_memory` turns a file split that fits a memory budget into an
    in-memory one.

    Attributes:
        info: Classes, ignore label and palette of the data set.
        names: One id per example (e.g. the file stem).
        groups: One group key per example (city for Cityscapes, sequence for
            CamVid) or None for a split without groups. Search splits keep groups
            apart so the two halves do not share near-duplicate frames.
    """

    def __init__(self, info: DatasetInfo, backing: "_Backing", names: Sequence[str],
                 groups: Sequence[str] | None, skipped: Sequence[dict] = ()):
        """Wraps a backing; use `from_arrays`, `from_files` or a loader instead."""
        self.info = info
        # Bad pairs left out of this split with skip_bad (--skip_bad_examples), each
        # {"image", "label", "error"}; empty otherwise.
        self.skipped = tuple(skipped)
        self._backing = backing
        self.names = tuple(str(n) for n in names)
        self.groups = None if groups is None else tuple(str(g) for g in groups)
        if len(self.names) != backing.num_examples:
            raise ConfigError(f"{len(self.names)} names for {backing.num_examples} examples")
        if self.groups is not None and len(self.groups) != backing.num_examples:
            raise ConfigError(f"{len(self.groups)} groups for {backing.num_examples} examples")

    @classmethod
    def from_arrays(cls, info: DatasetInfo, images: np.ndarray | Sequence[np.ndarray],
                    labels: np.ndarray | Sequence[np.ndarray], *,
                    names: Sequence[str] | None = None,
                    groups: Sequence[str] | None = None) -> "SegmentationSource":
        """Builds an in-memory split from decoded arrays.

        Args:
            info: The data set the labels belong to.
            images: uint8 `[N, H, W, 3]`, or a sequence of `[H_i, W_i, 3]` arrays.
            labels: Train ids, `[N, H, W]` or a sequence of `[H_i, W_i]` arrays, with
                values in `0..num_classes-1` or `info.ignore_label`.
            names: Example ids; defaults to `"000000"`, `"000001"`, ...
            groups: Optional group key per example.

        Returns:
            The in-memory source.

        Raises:
            DatasetError: If the arrays are empty, have the wrong shape or dtype,
                disagree in size, or hold label values outside the classes.
        """
        # Stacked arrays are kept as they are (views are validated, nothing copied).
        stacked = isinstance(images, np.ndarray) and isinstance(labels, np.ndarray)
        images = images if stacked else [np.asarray(x) for x in images]
        labels = labels if stacked else [np.asarray(y) for y in labels]
        if not len(images):
            raise DatasetError(f"from_arrays got no examples for {info.name}; pass at "
                               f"least one image and label")
        if len(images) != len(labels):
            raise DatasetError(f"from_arrays got {len(images)} images but {len(labels)} "
                               f"labels; pass one label map per image")
        encoding = LabelEncoding.train_ids(info, fix="")
        for i, (image, label) in enumerate(zip(images, labels)):
            if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
                raise DatasetError(
                    f"from_arrays: image {i} has shape {image.shape} and dtype "
                    f"{image.dtype}; images must be uint8 [H, W, 3]")
            if label.shape != image.shape[:2]:
                raise DatasetError(
                    f"from_arrays: label {i} has shape {label.shape} but its image is "
                    f"{image.shape[:2]}; each label map must have its image's size")
            # The max test settles the common case without a full table lookup.
            if label.size and (label.min() < 0 or label.max() > 255 or (
                    label.max() >= info.num_classes
                    and encoding.first_invalid_value(label) is not None)):
                raise DatasetError(
                    f"from_arrays: label {i} holds values outside 0-{info.num_classes - 1} "
                    f"and {info.ignore_label}; map raw ids to train ids first")
        labels = (labels.astype(np.uint8, copy=False) if stacked
                  else [y.astype(np.uint8, copy=False) for y in labels])
        names = names if names is not None else [f"{i:06d}" for i in range(len(images))]
        return cls(info, _array_backing(images, labels), names, groups)

    @classmethod
    def from_files(cls, info: DatasetInfo, image_paths: Sequence[str | os.PathLike],
                   label_paths: Sequence[str | os.PathLike], *, encoding: LabelEncoding,
                   names: Sequence[str] | None = None,
                   groups: Sequence[str] | None = None, skip_bad: bool = False,
                   skipped: Sequence[dict] = ()) -> "SegmentationSource":
        """Builds a file-backed split, checking every pair cheaply up front.

        Only the file headers (and the last bytes of each PNG) are read here: that
        catches missing files, image/label size mismatches, colour label images and
        truncated downloads before a run starts. Label values and full
        decodability are checked when the pixels are decoded (`cache_in_memory`, or
        a graph-side assertion in `load`).

        Args:
            info: The data set the labels belong to.
            image_paths: One image file per example (PNG or JPEG).
            label_paths: One single-channel PNG label map per example.
            encoding: How raw label values map to train ids.
            names: Example ids; defaults to the image file stems.
            groups: Optional group key per example.
            skip_bad: Leave a pair that fails the checks out of the split (recorded in
                `skipped`) instead of raising.
            skipped: Pairs a loader already left out (e.g. a list line naming a
                missing file), carried into `skipped`.

        Returns:
            The file-backed source.

        Raises:
            DatasetError: If the split is empty, a pair fails the checks above (without
                `skip_bad`), or every pair fails them.
        """
        image_paths = [os.fspath(p) for p in image_paths]
        label_paths = [os.fspath(p) for p in label_paths]
        if not image_paths:
            raise DatasetError(f"from_files got no examples for {info.name}; check that "
                               f"the split's directory or list file is not empty")
        if len(image_paths) != len(label_paths):
            raise DatasetError(f"from_files got {len(image_paths)} images but "
                               f"{len(label_paths)} label maps; pass one label per image")
        if names is None:
            names = [os.path.splitext(os.path.basename(p))[0] for p in image_paths]
        sizes, good, skipped = [], [], list(skipped)
        for index, pair in enumerate(zip(image_paths, label_paths)):
            try:
                sizes.append(_check_pair(*pair, encoding))
            except DatasetError as error:
                if not skip_bad:
                    raise with_skip_hint(error) from None
                skipped.append(skipped_record(*pair, error))
                continue
            good.append(index)
        if not good:
            raise no_good_examples(f"the {info.name} split", skipped)
        keep = lambda items: [items[i] for i in good]  # noqa: E731
        return cls(info, _FileBacking(keep(image_paths), keep(label_paths),
                                      np.array(sizes, dtype=np.int64), encoding),
                   keep(names), None if groups is None else keep(groups), skipped)

    def __len__(self) -> int:
        return self._backing.num_examples

    def __repr__(self) -> str:
        kind = "memory" if self.in_memory else "files"
        size = self.image_size or "mixed sizes"
        return (f"SegmentationSource({self.info.name}, {len(self)} examples, {size}, "
                f"{kind}, groups={sorted(set(self.groups)) if self.groups else None})")

    @property
    def in_memory(self) -> bool:
        """Whether the examples are held decoded in memory."""
        return self._backing.in_memory

    @property
    def image_sizes(self) -> np.ndarray:
        """int64 `[N, 2]` array of per-example `(height, width)`."""
        return self._backing.sizes.copy()

    @property
    def image_size(self) -> tuple[int, int] | None:
        """The `(height, width)` shared by all examples, or None if sizes differ."""
        sizes = self._backing.sizes
        if (sizes == sizes[0]).all():
            return int(sizes[0, 0]), int(sizes[0, 1])
        return None

    @property
    def decoded_nbytes(self) -> int:
        """Bytes the decoded split takes in memory (3 image + 1 label byte per pixel)."""
        return int((self._backing.sizes[:, 0] * self._backing.sizes[:, 1]).sum() * 4)

    def load(self, index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Returns example `index` as (uint8 `[H, W, 3]` image, uint8 `[H, W]` label).

        Graph-compatible: `index` may be a symbolic scalar inside `tf.data.map`.
        Labels are train ids with `info.ignore_label` for unscored pixels. For a
        file-backed source an invalid label value fails the graph with an
        `InvalidArgumentError` that names the label file.
        """
        image, label = self._backing.load(tf.convert_to_tensor(index, tf.int64))
        return image, label

    def subset(self, indices: Sequence[int] | np.ndarray) -> "SegmentationSource":
        """Returns a source with the given examples, in the given order.

        Args:
            indices: Example indices into this source (repeats allowed).

        Returns:
            A source of the same backing kind, with names and groups carried over.
        """
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"subset indices must be in 0..{len(self) - 1}")
        if not indices.size:
            raise DatasetError(f"subset of {self.info.name} with no indices; a source "
                               f"needs at least one example")
        groups = None if self.groups is None else [self.groups[i] for i in indices]
        return SegmentationSource(self.info, self._backing.subset(indices),
                                  [self.names[i] for i in indices], groups, self.skipped)

    def cache_in_memory(self, max_bytes: int = DEFAULT_CACHE_BYTES,
                        skip_bad: bool = False) -> "SegmentationSource":
        """Decodes a file-backed split once and serves it from memory, if it fits.

        The decode runs as a parallel `tf.data` map over `load`'s decoder and is
        where label values and decodability are validated with precise
        `DatasetError`s.

        Args:
            max_bytes: Memory budget for the decoded split (see `decoded_nbytes`).
            skip_bad: Leave out (and record in `skipped`) the pairs that cannot be
                decoded or hold invalid label values instead of raising. A split too
                large to cache is then decoded once to find them, and keeps streaming
                from files without them.

        Returns:
            An in-memory source, or a file-backed one when this source's decoded size
            exceeds `max_bytes` (`self` unless pairs were skipped).

        Raises:
            DatasetError: If a file cannot be decoded or a label value is invalid
                (without `skip_bad`), or every pair is bad.
        """
        fits = self.decoded_nbytes <= max_bytes
        if self.in_memory or not (fits or skip_bad):
            return self
        images, labels, bad = self._backing.decode_all(skip_bad=skip_bad, keep=fits)
        skipped = self.skipped + tuple(
            skipped_record(self._backing.image_paths[i], self._backing.label_paths[i], e)
            for i, e in bad)
        good = sorted(set(range(len(self))) - {i for i, _ in bad})
        if not good:
            raise no_good_examples(f"the {self.info.name} split", skipped)
        names = [self.names[i] for i in good]
        groups = None if self.groups is None else [self.groups[i] for i in good]
        if not fits:
            backing = self._backing.subset(np.array(good, np.int64)) if bad else self._backing
            return SegmentationSource(self.info, backing, names, groups, skipped)
        return SegmentationSource(self.info, _array_backing(images, labels), names, groups,
                                  skipped)


class _Backing(abc.ABC):
    """Storage behind a SegmentationSource: per-example sizes, graph load, subset."""

    in_memory: bool
    sizes: np.ndarray  # int64 [N, 2] of (height, width)

    @property
    def num_examples(self) -> int:
        return len(self.sizes)

    @abc.abstractmethod
    def load(self, index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Graph-compatible: uint8 image [H, W, 3] and uint8 train-id label [H, W]."""

    @abc.abstractmethod
    def subset(self, indices: np.ndarray) -> "_Backing":
        """A backing of the same kind holding the given examples."""


def _array_backing(images: np.ndarray | Sequence[np.ndarray],
                   labels: np.ndarray | Sequence[np.ndarray]) -> _Backing:
    """Stacks same-size examples (unless already stacked), packs mixed-size ones."""
    if isinstance(images, np.ndarray) and isinstance(labels, np.ndarray):
        return _StackedBacking(images, labels)
    sizes = np.array([image.shape[:2] for image in images], dtype=np.int64)
    if (sizes == sizes[0]).all():
        return _StackedBacking(np.stack(images), np.stack(labels))
    return _PackedBacking(images, labels)


class _StackedBacking(_Backing):
    """All examples share one size: two dense tensors indexed with tf.gather."""

    in_memory = True

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        # NOTE: eager tensors built once here are captured by reference when a
        # tf.data function uses them, so the pixels are not copied per pipeline.
        self._images = tf.convert_to_tensor(images, tf.uint8)
        self._labels = tf.convert_to_tensor(labels, tf.uint8)
        self.sizes = np.tile(np.array(images.shape[1:3], np.int64), (len(images), 1))

    def load(self, index):
        return tf.gather(self._images, index), tf.gather(self._labels, index)

    def subset(self, indices):
        return _StackedBacking(tf.gather(self._images, indices).numpy(),
                               tf.gather(self._labels, indices).numpy())


class _PackedBacking(_Backing):
    """Examples of mixed sizes, concatenated into one flat buffer with offsets.

    A Python list of tensors cannot be indexed by a symbolic index inside a
    tf.data function; a flat buffer plus offsets can, with one slice and reshape.
    """

    in_memory = True

    def __init__(self, images: Sequence[np.ndarray], labels: Sequence[np.ndarray]):
        self.sizes = np.array([image.shape[:2] for image in images], dtype=np.int64)
        pixels = self.sizes[:, 0] * self.sizes[:, 1]
        self._offsets = tf.constant(np.concatenate([[0], np.cumsum(pixels)]), tf.int64)
        self._images = tf.convert_to_tensor(
            np.concatenate([image.reshape(-1) for image in images]), tf.uint8)
        self._labels = tf.convert_to_tensor(
            np.concatenate([label.reshape(-1) for label in labels]), tf.uint8)
        self._sizes = tf.convert_to_tensor(self.sizes)

    def load(self, index):
        start, stop = self._offsets[index], self._offsets[index + 1]
        size = self._sizes[index]
        image = tf.reshape(self._images[3 * start:3 * stop], tf.concat([size, [3]], 0))
        label = tf.reshape(self._labels[start:stop], size)
        return image, label

    def subset(self, indices):
        pairs = [self.load(i) for i in indices]
        return _array_backing([x.numpy() for x, _ in pairs], [y.numpy() for _, y in pairs])


class _FileBacking(_Backing):
    """Image and label paths, decoded with tf.io inside the graph."""

    in_memory = False

    def __init__(self, image_paths: Sequence[str], label_paths: Sequence[str],
                 sizes: np.ndarray, encoding: LabelEncoding):
        self.image_paths = tuple(image_paths)
        self.label_paths = tuple(label_paths)
        self.sizes = sizes
        self.encoding = encoding
        self._image_paths = tf.constant(self.image_paths)
        self._label_paths = tf.constant(self.label_paths)
        self._table = tf.constant(encoding.lookup_table())
        self._message = tf.constant(f" but {encoding.description}; {encoding.fix}")

    def subset(self, indices):
        return _FileBacking([self.image_paths[i] for i in indices],
                            [self.label_paths[i] for i in indices], self.sizes[indices],
                            self.encoding)

    def decode_raw(self, index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Decodes one pair without mapping or checking the label values."""
        image = tf.io.decode_image(tf.io.read_file(self._image_paths[index]), channels=3,
                                   expand_animations=False)
        image.set_shape([None, None, 3])
        raw = tf.io.decode_png(tf.io.read_file(self._label_paths[index]), channels=1)
        return image, raw[..., 0]

    def load(self, index):
        image, raw = self.decode_raw(index)
        mapped = tf.gather(self._table, tf.cast(raw, tf.int32))
        # The up-front checks read headers only; the values are first seen here.
        # The assertion formats its message (with the path) only when it fails.
        bad = tf.reduce_max(tf.where(mapped < 0, tf.cast(raw, tf.int32), -1))
        check = tf.debugging.Assert(
            bad < 0, [tf.strings.join(["label file ", self._label_paths[index], " has value ",
                                       tf.strings.as_string(bad), self._message])])
        with tf.control_dependencies([check]):
            label = tf.cast(mapped, tf.uint8)
        return image, label

    def decode_all(self, skip_bad: bool = False, keep: bool = True):
        """Decodes every pair in parallel, validating and mapping labels in numpy.

        Args:
            skip_bad: Record a pair that cannot be decoded or holds an invalid label
                value, and go on, instead of raising.
            keep: Return the decoded pixels (False: only check them).

        Returns:
            (images, labels, bad): the good pairs' images and train-id labels (stacked
            when they share one size; None without `keep`) and [(index, DatasetError)]
            of the bad ones.
        """
        table = self.encoding.lookup_table().astype(np.uint8)
        n = self.num_examples
        images = labels = None
        if keep and (self.sizes == self.sizes[0]).all():
            # Fill preallocated stacks: no second copy of the split while stacking.
            h, w = self.sizes[0]
            images, labels = np.empty((n, h, w, 3), np.uint8), np.empty((n, h, w), np.uint8)
        elif keep:
            images, labels = [None] * n, [None] * n
        bad, index = [], 0
        while index < n:  # one pipeline, started again after a pair that fails to decode
            dataset = (tf.data.Dataset.range(index, n)
                       .map(self.decode_raw, num_parallel_calls=tf.data.AUTOTUNE,
                            deterministic=True)
                       .prefetch(tf.data.AUTOTUNE))
            try:
                for image, raw in dataset:
                    raw = raw.numpy()
                    value = self.encoding.first_invalid_value(raw)
                    if value is not None:
                        error = DatasetError(
                            f"label file {self.label_paths[index]} has value {value} but "
                            f"{self.encoding.description}; {self.encoding.fix}")
                        if not skip_bad:
                            raise with_skip_hint(error)
                        bad.append((index, error))
                    elif keep:
                        images[index] = image.numpy()
                        labels[index] = table[raw]
                    index += 1
            except tf.errors.OpError as failure:
                error = self._decode_error(index, failure)
                if not skip_bad:
                    raise with_skip_hint(error) from None
                bad.append((index, error))
                index += 1
        if keep and bad:
            drop = [i for i, _ in bad]
            if isinstance(images, np.ndarray):
                images, labels = np.delete(images, drop, 0), np.delete(labels, drop, 0)
            else:
                images = [x for i, x in enumerate(images) if i not in drop]
                labels = [y for i, y in enumerate(labels) if i not in drop]
        return images, labels, bad

    def _decode_error(self, index: int, error: tf.errors.OpError) -> DatasetError:
        """Finds which file of pair `index` failed to decode and says so."""
        for path, channels in ((self.image_paths[index], 3), (self.label_paths[index], 1)):
            try:
                tf.io.decode_image(tf.io.read_file(path), channels=channels,
                                   expand_animations=False)
            except tf.errors.OpError as file_error:
                return DatasetError(f"cannot decode {path} ({file_error.message.strip()}); "
                                    f"the file is corrupt: re-extract or re-download it")
        return DatasetError(f"cannot decode example {index} ({self.image_paths[index]}, "
                            f"{self.label_paths[index]}): {error.message.strip()}")


def _check_pair(image_path: str, label_path: str,
                encoding: LabelEncoding) -> tuple[int, int]:
    """Checks one pair from headers only and returns its (height, width)."""
    image_mode, image_size = _read_header(image_path, "image")
    label_mode, label_size = _read_header(label_path, "label")
    del image_mode  # decode_image converts grey, palette and RGBA images to RGB.
    if label_mode != "L":
        raise DatasetError(
            f"label file {label_path} is a {label_mode!r} image, but label maps must be "
            f"single-channel 8-bit ids (PNG mode 'L'); {encoding.fix}")
    if image_size != label_size:
        raise DatasetError(
            f"image {image_path} is {image_size[0]}x{image_size[1]} (WxH) but its label "
            f"{label_path} is {label_size[0]}x{label_size[1]}; a label map must have its "
            f"image's size: check that images and labels are paired correctly")
    return image_size[1], image_size[0]


def _read_header(path: str, role: str) -> tuple[str, tuple[int, int]]:
    """Returns (PIL mode, (width, height)) of an image file without decoding it."""
    if not os.path.isfile(path):
        raise DatasetError(f"{role} file {path} does not exist; check the data set root "
                           f"and that the download was extracted completely")
    try:
        with Image.open(path) as image:
            mode, size, kind = image.mode, image.size, image.format
    except (UnidentifiedImageError, OSError) as error:
        raise DatasetError(f"{role} file {path} is not a readable image ({error}); the "
                           f"file is corrupt: re-extract or re-download it") from None
    if kind == "PNG":
        with open(path, "rb") as file:
            file.seek(max(0, os.path.getsize(path) - len(_PNG_END)))
            if file.read() != _PNG_END:
                raise DatasetError(f"{role} file {path} is truncated (the PNG does not end "
                                   f"with an IEND chunk); re-extract or re-download it")
    elif role == "label":
        raise DatasetError(f"label file {path} is {kind}, but label maps must be lossless "
                           f"PNG (lossy formats change the ids at region borders)")
    return mode, size
