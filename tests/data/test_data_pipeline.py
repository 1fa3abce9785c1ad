"""make_dataset and the multi-epoch stream: shapes, order, exact resume, index-level skipping."""

import numpy as np
import pytest
import tensorflow as tf

from tf_nas_seg.data import (AugmentConfig, DatasetError, SegmentationSource, batches_per_epoch,
                             batch_stream, epoch_order, load_camvid, make_dataset,
                             make_street_scenes, stream_dataset, synthetic_info)

AUGMENT = AugmentConfig(flip=True, scale_range=(0.5, 2.0), crop_size=(24, 40))


@pytest.fixture(scope="module")
def scenes():
    return make_street_scenes(num_images=22, height=32, width=48, num_classes=5, seed=3)


def _batches(dataset):
    return [(x.numpy(), y.numpy()) for x, y in dataset]


def test_batches_have_documented_dtypes_shapes_and_ranges(scenes):
    dataset = make_dataset(scenes, batch_size=4, seed=0, augment=AUGMENT)
    assert dataset.element_spec[0] == tf.TensorSpec([4, 24, 40, 3], tf.float32)
    assert dataset.element_spec[1] == tf.TensorSpec([4, 24, 40], tf.int32)
    batches = _batches(dataset)
    assert len(batches) == batches_per_epoch(22, 4) == 5
    images = np.concatenate([x for x, _ in batches])
    labels = np.concatenate([y for _, y in batches])
    assert images.min() >= 0 and images.max() <= 255 and images.max() > 1  # raw, not normalised
    assert set(np.unique(labels).tolist()) <= set(range(5)) | {255}


def test_without_augmentation_examples_arrive_unchanged_in_epoch_order(scenes):
    batches = _batches(make_dataset(scenes, batch_size=5, seed=7, epoch=2))
    order = epoch_order(len(scenes), seed=7, epoch=2)
    for position, index in enumerate(order[:20]):
        image, label = scenes.load(int(index))
        x, y = batches[position // 5]
        np.testing.assert_array_equal(x[position % 5], image.numpy())
        np.testing.assert_array_equal(y[position % 5], label.numpy())


def test_epoch_order_is_a_seeded_permutation():
    order = epoch_order(100, seed=1, epoch=0)
    assert sorted(order.tolist()) == list(range(100))
    np.testing.assert_array_equal(order, epoch_order(100, seed=1, epoch=0))
    assert not np.array_equal(order, epoch_order(100, seed=1, epoch=1))
    assert not np.array_equal(order, epoch_order(100, seed=2, epoch=0))
    np.testing.assert_array_equal(epoch_order(5, 1, 0, shuffle=False), np.arange(5))


def test_stream_is_a_pure_function_of_seed_and_epoch(scenes):
    first = _batches(make_dataset(scenes, batch_size=4, seed=5, epoch=1, augment=AUGMENT))
    again = _batches(make_dataset(scenes, batch_size=4, seed=5, epoch=1, augment=AUGMENT,
                                  num_parallel_calls=1))
    other = _batches(make_dataset(scenes, batch_size=4, seed=5, epoch=2, augment=AUGMENT))
    for (x1, y1), (x2, y2) in zip(first, again):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(first[0][0], other[0][0])


@pytest.mark.parametrize("skip", [1, 3, 5])
def test_skip_batches_resumes_exactly(scenes, skip):
    full = _batches(make_dataset(scenes, batch_size=4, seed=11, epoch=4, augment=AUGMENT))
    resumed = _batches(make_dataset(scenes, batch_size=4, seed=11, epoch=4, augment=AUGMENT,
                                    skip_batches=skip))
    assert len(resumed) == len(full) - skip
    for (x1, y1), (x2, y2) in zip(full[skip:], resumed):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)


@pytest.mark.parametrize("start,count", [(0, 15), (3, 9), (5, 5), (7, 1), (4, 0)])
def test_one_pipeline_over_epochs_serves_the_batches_of_each_epoch(scenes, start, count):
    # 22 examples in batches of 4: 5 batches an epoch, the last 2 examples dropped.
    epochs = [_batches(make_dataset(scenes, batch_size=4, seed=3, epoch=e, augment=AUGMENT))
              for e in range(3)]
    expected = [b for epoch in epochs for b in epoch][start:start + count]
    streamed = _batches(stream_dataset(scenes, batch_size=4, seed=3, start_batch=start,
                                       num_batches=count, augment=AUGMENT))
    generated = [(x.numpy(), y.numpy()) for x, y in batch_stream(
        scenes, batch_size=4, seed=3, start_batch=start, num_batches=count, augment=AUGMENT)]
    assert len(streamed) == len(generated) == len(expected) == count
    for (x1, y1), (x2, y2), (x3, y3) in zip(expected, streamed, generated):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
        np.testing.assert_array_equal(x1, x3)
        np.testing.assert_array_equal(y1, y3)


def test_endless_stream_crosses_its_pipelines_seamlessly(scenes):
    # 2 batches an epoch: one pipeline serves 100 epochs (200 batches), so batch 199
    # is the last of the first pipeline and batch 200 the first of the second.
    stream = batch_stream(scenes, batch_size=11, seed=1, start_batch=199)
    x199, _ = next(stream)
    x200, _ = next(stream)
    last_of_99 = _batches(make_dataset(scenes, batch_size=11, seed=1, epoch=99))[1][0]
    first_of_100 = _batches(make_dataset(scenes, batch_size=11, seed=1, epoch=100))[0][0]
    np.testing.assert_array_equal(x199.numpy(), last_of_99)
    np.testing.assert_array_equal(x200.numpy(), first_of_100)


def test_stream_refuses_negative_counts(scenes):
    with pytest.raises(DatasetError, match="must be >= 0"):
        stream_dataset(scenes, batch_size=4, seed=0, start_batch=-1, num_batches=2)


def test_skip_batches_with_partial_last_batch(scenes):
    full = _batches(make_dataset(scenes, batch_size=4, seed=0, drop_remainder=False))
    resumed = _batches(make_dataset(scenes, batch_size=4, seed=0, drop_remainder=False,
                                    skip_batches=2))
    assert [len(x) for x, _ in full] == [4, 4, 4, 4, 4, 2]
    assert [len(x) for x, _ in resumed] == [4, 4, 4, 2]
    np.testing.assert_array_equal(full[-1][0], resumed[-1][0])


def test_skipped_examples_are_never_decoded(make_camvid):
    root = make_camvid(train_counts=(4, 4, 4))
    source = load_camvid(root, "train", cache_max_bytes=None)
    order = epoch_order(len(source), seed=0, epoch=0)
    # Delete the files of the first two batches: decoding any of them would fail.
    for index in order[:6]:
        name = source.names[index]
        (root / "train" / f"{name}.png").unlink()
    with pytest.raises(tf.errors.NotFoundError):
        _batches(make_dataset(source, batch_size=3, seed=0))
    resumed = _batches(make_dataset(source, batch_size=3, seed=0, skip_batches=2))
    assert len(resumed) == 2


def test_mixed_sizes_need_resize_or_crop():
    info = synthetic_info(3)
    images = [np.zeros((h, 8, 3), np.uint8) for h in (6, 7, 8, 9)]
    labels = [np.zeros((h, 8), np.uint8) for h in (6, 7, 8, 9)]
    source = SegmentationSource.from_arrays(info, images, labels)
    with pytest.raises(DatasetError, match="differ in size.*resize"):
        make_dataset(source, batch_size=2, seed=0)
    dataset = make_dataset(source, batch_size=2, seed=0,
                           augment=AugmentConfig(flip=False, scale_range=None, resize=(5, 4)))
    assert [x.shape for x, _ in dataset] == [(2, 5, 4, 3)] * 2
    assert len(_batches(make_dataset(source, batch_size=1, seed=0))) == 4


def test_bad_arguments(scenes):
    with pytest.raises(DatasetError, match="skip_batches=6 is outside the epoch's 5 batches"):
        make_dataset(scenes, batch_size=4, seed=0, skip_batches=6)
    with pytest.raises(DatasetError, match="fewer than one batch"):
        make_dataset(scenes, batch_size=64, seed=0)
    with pytest.raises(DatasetError, match="batch_size"):
        make_dataset(scenes, batch_size=0, seed=0)
