"""Batched, augmented, exactly resumable tf.data pipelines over a SegmentationSource.

The stream of an epoch is a pure function of `(seed, epoch)`:

* the example order is a permutation drawn from `(seed, epoch)` (`epoch_order`);
* the augmentation of the example at position `p` of the epoch is seeded with
  `stateless_fold_in([seed, epoch], p)`, so it depends neither on the order in
  which parallel workers run nor on what came before.

A run that stopped after `k` batches of epoch `e` resumes with
`make_dataset(..., epoch=e, skip_batches=k)`, which drops the first `k * batch_size`
positions from the index list before anything is decoded, and yields exactly the
batches the uninterrupted epoch would have yielded next.
"""

import math

import numpy as np
import tensorflow as tf

from tf_nas_seg.data.augment_config import AugmentConfig
from tf_nas_seg.data.errors import DatasetError
from tf_nas_seg.data.segmentation_augmenter import SegmentationAugmenter
from tf_nas_seg.data.segmentation_source import SegmentationSource

__all__ = ["AugmentConfig", "batch_stream", "batches_per_epoch", "epoch_order", "make_dataset",
           "stream_dataset"]


def epoch_order(num_examples: int, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    """The example indices of one epoch, in the order they are served.

    Args:
        num_examples: Size of the source.
        seed: Run seed.
        epoch: Epoch number (0-based).
        shuffle: Whether to permute; otherwise `0..num_examples-1`.

    Returns:
        int64 array of length `num_examples`.
    """
    if not shuffle:
        return np.arange(num_examples, dtype=np.int64)
    rng = np.random.default_rng([seed, epoch])
    return rng.permutation(num_examples).astype(np.int64)


def batches_per_epoch(num_examples: int, batch_size: int, drop_remainder: bool = True) -> int:
    """Number of batches `make_dataset` yields for a full epoch."""
    if drop_remainder:
        return num_examples // batch_size
    return math.ceil(num_examples / batch_size)


def make_dataset(source: SegmentationSource, *, batch_size: int, seed: int, epoch: int = 0,
                 skip_batches: int = 0, shuffle: bool = True,
                 augment: AugmentConfig | None = None, drop_remainder: bool = True,
                 num_parallel_calls: int = tf.data.AUTOTUNE) -> tf.data.Dataset:
    """Builds the dataset of one epoch.

    Args:
        source: The split to read.
        batch_size: Examples per batch.
        seed: Run seed; with `epoch` it fixes order and augmentation.
        epoch: Epoch number (0-based).
        skip_batches: Batches of this epoch to leave out at the start (for resuming);
            the skipped examples are never decoded.
        shuffle: Permute the examples (per epoch); False serves them in source
            order (evaluation).
        augment: Augmentation settings, or None to serve examples as stored.
        drop_remainder: Drop the last incomplete batch.
        num_parallel_calls: Parallelism of decode + augment (deterministic order).

    Returns:
        A dataset of `(images, labels)`: float32 `[B, H, W, 3]` with raw 0..255
        values (models normalise), int32 `[B, H, W]` train ids with the ignore label
        255. H and W are static when known (uniform source, crop or resize).

    Raises:
        DatasetError: For a batch size below 1, `skip_batches` outside the epoch, an
            empty epoch, or examples of different sizes that cannot be batched.
    """
    num_batches = _check_batching(source, batch_size, drop_remainder)
    if not 0 <= skip_batches <= num_batches:
        raise DatasetError(f"skip_batches={skip_batches} is outside the epoch's "
                           f"{num_batches} batches; check the resumed step counter")
    order = epoch_order(len(source), seed, epoch, shuffle)
    stop = num_batches * batch_size if drop_remainder else len(source)
    positions = np.arange(skip_batches * batch_size, stop, dtype=np.int64)
    # Skipping happens here, on the index list, so skipped examples cost nothing.
    return _pipeline(source, np.full(len(positions), epoch, np.int64), positions,
                     order[positions], batch_size=batch_size, seed=seed, augment=augment,
                     drop_remainder=drop_remainder, num_parallel_calls=num_parallel_calls)


def stream_dataset(source: SegmentationSource, *, batch_size: int, seed: int,
                   start_batch: int, num_batches: int, augment: AugmentConfig | None = None,
                   num_parallel_calls: int = tf.data.AUTOTUNE,
                   replicas: tuple[int, int, int] | None = None) -> tf.data.Dataset:
    """Batches `start_batch .. start_batch + num_batches - 1` of the endless stream.

    Batch `k` of the stream is batch `k % per_epoch` of epoch `k // per_epoch` as
    `make_dataset` builds it (same examples, same augmentation), but all of them come
    from one pipeline. Starting a new `tf.data` iterator at every epoch stalled the
    first step of each epoch (seconds for a tiny supernet, about 25 s for the CamVid
    one on 2 cores) once the training step had been traced.

    `replicas=(first, count, total)` serves replicas `first .. first + count - 1` of
    `total` (tf.distribute): replica r's batch is images r * b .. (r + 1) * b - 1 of
    each global batch (b = batch_size / total), decoded and augmented exactly as in
    the global batch; the dataset yields, for each global batch, the `count`
    per-replica batches in order. So the replicas together see the one-device
    stream, and each input pipeline (worker) decodes only its replicas' images.

    Raises:
        DatasetError: As `make_dataset`, or for a negative `start_batch` or
            `num_batches`, or replicas that do not divide `batch_size`.
    """
    per_epoch = _check_batching(source, batch_size, drop_remainder=True)
    if start_batch < 0 or num_batches < 0:
        raise DatasetError(f"start_batch={start_batch} and num_batches={num_batches} "
                           "must be >= 0; check the resumed step counter")
    stop_batch = start_batch + num_batches
    epochs, positions, indices = [], [], []
    for epoch in range(start_batch // per_epoch, -(-stop_batch // per_epoch)):
        first = max(start_batch - epoch * per_epoch, 0)
        last = min(stop_batch - epoch * per_epoch, per_epoch)
        pos = np.arange(first * batch_size, last * batch_size, dtype=np.int64)
        epochs.append(np.full(len(pos), epoch, np.int64))
        positions.append(pos)
        indices.append(epoch_order(len(source), seed, epoch)[pos])
    empty = np.zeros(0, np.int64)
    epochs, positions, indices = (np.concatenate(a) if a else empty
                                  for a in (epochs, positions, indices))
    if replicas is not None:
        first, count, total = replicas
        if batch_size % total or not 0 <= first < first + count <= total:
            raise DatasetError(f"replicas {first}..{first + count - 1} of {total} do not "
                               f"split batches of {batch_size} evenly")
        batch_size //= total
        replica = positions % (batch_size * total) // batch_size
        keep = (replica >= first) & (replica < first + count)
        epochs, positions, indices = epochs[keep], positions[keep], indices[keep]
    return _pipeline(source, epochs, positions, indices, batch_size=batch_size,
                     seed=seed, augment=augment, drop_remainder=True,
                     num_parallel_calls=num_parallel_calls)


def _check_batching(source, batch_size, drop_remainder):
    """Batches of a full epoch; refuses settings that cannot give one."""
    if batch_size < 1:
        raise DatasetError(f"batch_size must be >= 1, got {batch_size}")
    num_batches = batches_per_epoch(len(source), batch_size, drop_remainder)
    if num_batches == 0:
        raise DatasetError(
            f"{source.info.name} has {len(source)} examples, fewer than one batch of "
            f"{batch_size}; lower the batch size or pass drop_remainder=False")
    return num_batches


def _example_size(source, augment):
    return augment.output_size(source.image_size) if augment else source.image_size


def _pipeline(source, epochs, positions, indices, *, batch_size, seed, augment,
              drop_remainder, num_parallel_calls):
    """Decodes (and augments) example `indices[i]` as position `positions[i]` of
    epoch `epochs[i]`, then batches."""
    size = _example_size(source, augment)
    if size is None and batch_size > 1:
        raise DatasetError(
            f"examples of {source.info.name} differ in size and cannot be batched; set "
            f"AugmentConfig(resize=(h, w)) or crop_size=(h, w), or use batch_size=1")
    dataset = tf.data.Dataset.from_tensor_slices((epochs, positions, indices))
    seed_t = tf.constant(seed, tf.int64)
    augmenter = SegmentationAugmenter(augment, source.info.ignore_label) if augment else None
    shape = [None, None] if size is None else list(size)

    def load(epoch, position, index):
        image, label = source.load(index)
        if augmenter is not None:
            key = tf.random.experimental.stateless_fold_in(tf.stack([seed_t, epoch]),
                                                           position)
            image, label = augmenter(image, label, key)
        image = tf.ensure_shape(tf.cast(image, tf.float32), shape + [3])
        label = tf.ensure_shape(tf.cast(label, tf.int32), shape)
        return image, label

    dataset = dataset.map(load, num_parallel_calls=num_parallel_calls, deterministic=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    options = tf.data.Options()
    options.deterministic = True
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def batch_stream(source: SegmentationSource, *, batch_size: int, seed: int,
                 start_batch: int = 0, augment: AugmentConfig | None = None,
                 num_batches: int | None = None, strategy=None):
    """Training batches from global batch `start_batch` on.

    Batch `k` of the stream is batch `k % per_epoch` of epoch `k // per_epoch`, so a
    run resumed at step `k` sees exactly the batches the uninterrupted run would have.

    Args:
        source: The split to read.
        batch_size: Examples per batch (incomplete batches are dropped).
        seed: Run seed.
        start_batch: Global index of the first batch to yield.
        augment: Augmentation settings.
        num_batches: How many batches the caller will take (one `tf.data` pipeline
            serves them all); None for an endless stream (one pipeline per 100 epochs).
        strategy: A `tf.distribute.Strategy` with several replicas, or None. With one,
            `batch_size` is the global batch and each batch yielded is a distributed
            value holding every local replica's share (`stream_dataset`'s
            `replicas`), built by `distribute_datasets_from_function` with one input
            pipeline per worker.

    Yields:
        `(images, labels)` batches as `make_dataset` builds them.
    """
    per_epoch = batches_per_epoch(len(source), batch_size)
    if per_epoch == 0:
        raise DatasetError(f"{source.info.name} has {len(source)} examples, fewer than one "
                           f"batch of {batch_size}; lower the batch size")
    while num_batches is None or num_batches > 0:
        chunk = 100 * per_epoch if num_batches is None else num_batches
        if strategy is not None and strategy.num_replicas_in_sync > 1:
            yield from _distributed_stream(strategy, source, batch_size, seed,
                                           start_batch, chunk, augment)
        else:
            yield from stream_dataset(source, batch_size=batch_size, seed=seed,
                                      start_batch=start_batch, num_batches=chunk,
                                      augment=augment)
        start_batch += chunk
        if num_batches is not None:
            return


def _distributed_stream(strategy, source, batch_size, seed, start_batch, num_batches,
                        augment):
    """`stream_dataset`'s batches split over the replicas of `strategy`: each input
    pipeline (one per worker) serves its local replicas' shares of every global batch."""

    def dataset_fn(context):
        local = context.num_replicas_in_sync // context.num_input_pipelines
        return stream_dataset(
            source, batch_size=batch_size, seed=seed, start_batch=start_batch,
            num_batches=num_batches, augment=augment,
            replicas=(context.input_pipeline_id * local, local,
                      context.num_replicas_in_sync))

    return iter(strategy.distribute_datasets_from_function(dataset_fn))
