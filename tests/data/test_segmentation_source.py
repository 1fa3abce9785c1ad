"""SegmentationSource: in-memory (stacked / packed) and file backings, subset, cache."""

import numpy as np
import pytest
import tensorflow as tf

from tf_nas_seg.data import (CAMVID, CAMVID_ENCODING, DatasetError, SegmentationSource,
                             synthetic_info)

INFO = synthetic_info(4)


def _arrays(sizes, seed=0):
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]
    labels = [rng.choice(np.array([0, 1, 2, 3, 255], np.uint8), (h, w)) for h, w in sizes]
    return images, labels


def _load_all_in_graph(source):
    """Loads every example through tf.data, i.e. with a symbolic index."""
    dataset = tf.data.Dataset.range(len(source)).map(source.load)
    return [(x.numpy(), y.numpy()) for x, y in dataset]


def test_same_size_arrays_are_stacked_and_load_in_graph():
    images, labels = _arrays([(6, 8)] * 5)
    source = SegmentationSource.from_arrays(INFO, np.stack(images), np.stack(labels),
                                            groups=list("aabbc"))
    assert len(source) == 5 and source.in_memory
    assert source.image_size == (6, 8)
    assert source.names == ("000000", "000001", "000002", "000003", "000004")
    assert source.decoded_nbytes == 5 * 6 * 8 * 4
    for (x, y), image, label in zip(_load_all_in_graph(source), images, labels):
        np.testing.assert_array_equal(x, image)
        np.testing.assert_array_equal(y, label)
        assert x.dtype == np.uint8 and y.dtype == np.uint8


def test_mixed_size_arrays_are_packed_and_load_in_graph():
    sizes = [(6, 8), (5, 9), (7, 7), (6, 8)]
    images, labels = _arrays(sizes)
    source = SegmentationSource.from_arrays(INFO, images, labels)
    assert source.image_size is None
    assert source.image_sizes.tolist() == [list(s) for s in sizes]
    for (x, y), image, label in zip(_load_all_in_graph(source), images, labels):
        np.testing.assert_array_equal(x, image)
        np.testing.assert_array_equal(y, label)


@pytest.mark.parametrize("sizes", [[(4, 4)] * 4, [(4, 4), (3, 5), (4, 4), (2, 2)]])
def test_subset_keeps_order_names_and_groups(sizes):
    images, labels = _arrays(sizes)
    source = SegmentationSource.from_arrays(INFO, images, labels, names=list("pqrs"),
                                            groups=list("aabb"))
    part = source.subset([3, 0])
    assert part.names == ("s", "p") and part.groups == ("b", "a")
    assert part.in_memory
    loaded = _load_all_in_graph(part)
    np.testing.assert_array_equal(loaded[0][0], images[3])
    np.testing.assert_array_equal(loaded[1][1], labels[0])


def test_from_arrays_rejects_labels_outside_classes():
    images, labels = _arrays([(4, 4)])
    labels[0][0, 0] = 7
    with pytest.raises(DatasetError, match="label 0 holds values outside 0-3"):
        SegmentationSource.from_arrays(INFO, images, labels)


def test_from_arrays_rejects_size_mismatch_and_wrong_dtype():
    images, labels = _arrays([(4, 4)])
    with pytest.raises(DatasetError, match="label 0 has shape"):
        SegmentationSource.from_arrays(INFO, images, [labels[0][:3]])
    with pytest.raises(DatasetError, match="uint8"):
        SegmentationSource.from_arrays(INFO, [images[0].astype(np.float32)], labels)


def _file_source(tmp_path, png, num=4, size=(6, 10)):
    rng = np.random.default_rng(1)
    images, raws, image_paths, label_paths = [], [], [], []
    for i in range(num):
        images.append(rng.integers(0, 256, size + (3,), dtype=np.uint8))
        raws.append(rng.integers(0, 12, size, dtype=np.uint8))
        image_paths.append(png(tmp_path / f"img{i}.png", images[-1]))
        label_paths.append(png(tmp_path / f"lbl{i}.png", raws[-1]))
    source = SegmentationSource.from_files(CAMVID, image_paths, label_paths,
                                           encoding=CAMVID_ENCODING, groups=["g"] * num)
    expected = [np.where(r == 11, 255, r) for r in raws]
    return source, images, expected


def test_file_source_decodes_and_maps_labels_in_graph(tmp_path, png):
    source, images, expected = _file_source(tmp_path, png)
    assert not source.in_memory and source.names[0] == "img0"
    for (x, y), image, label in zip(_load_all_in_graph(source), images, expected):
        np.testing.assert_array_equal(x, image)
        np.testing.assert_array_equal(y, label)


def test_cache_in_memory_when_it_fits(tmp_path, png):
    source, images, expected = _file_source(tmp_path, png)
    cached = source.cache_in_memory(max_bytes=source.decoded_nbytes)
    assert cached.in_memory and cached.names == source.names and cached.groups == source.groups
    for (x, y), image, label in zip(_load_all_in_graph(cached), images, expected):
        np.testing.assert_array_equal(x, image)
        np.testing.assert_array_equal(y, label)


def test_cache_in_memory_keeps_files_when_over_budget(tmp_path, png):
    source, _, _ = _file_source(tmp_path, png)
    assert source.cache_in_memory(max_bytes=source.decoded_nbytes - 1) is source


def test_file_subset_stays_on_disk(tmp_path, png):
    source, images, _ = _file_source(tmp_path, png)
    part = source.subset([2])
    assert not part.in_memory and part.names == ("img2",)
    np.testing.assert_array_equal(_load_all_in_graph(part)[0][0], images[2])
