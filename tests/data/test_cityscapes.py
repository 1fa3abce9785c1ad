"""Cityscapes: the raw extracted layout, and the optional tensorflow-datasets path."""

import importlib.util
import sys
import zipfile

import numpy as np
import pytest
import tensorflow as tf

from tf_nas_seg.data import CITYSCAPES, DatasetError, load_cityscapes, load_cityscapes_tfds

# labelIds the fixture writes, in its pixel cycle, and their trainIds.
_RAW = np.array([0, 7, 8, 11, 26, 33, 255])
_TRAIN = np.array([255, 0, 1, 2, 13, 18, 255])


def _expected_label(height, width):
    return _TRAIN[np.arange(height * width).reshape(height, width) % len(_RAW)]


@pytest.mark.parametrize("cache", [None, 2**30])
def test_raw_layout_orders_by_city_and_maps_train_ids(make_cityscapes, cache):
    root = make_cityscapes(cities={"zurich": 1, "aachen": 2, "bochum": 1})
    source = load_cityscapes(root, "train", cache_max_bytes=cache)
    assert source.info is CITYSCAPES and source.in_memory == (cache is not None)
    assert source.groups == ("aachen", "aachen", "bochum", "zurich")
    assert source.names == ("aachen_000000_000019", "aachen_000001_000019",
                            "bochum_000000_000019", "zurich_000000_000019")
    for _, label in tf.data.Dataset.range(len(source)).map(source.load):
        np.testing.assert_array_equal(label.numpy(), _expected_label(8, 16))


def test_val_split_is_separate(make_cityscapes):
    root = make_cityscapes(cities={"frankfurt": 2}, split="val")
    assert load_cityscapes(root, "val").groups == ("frankfurt", "frankfurt")
    with pytest.raises(DatasetError, match="leftImg8bit/train does not exist"):
        load_cityscapes(root, "train")


def test_tfds_missing_gives_install_hint(monkeypatch, tmp_path):
    # A None entry in sys.modules makes `import tensorflow_datasets` fail.
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
    with pytest.raises(DatasetError, match="pip install tensorflow-datasets"):
        load_cityscapes_tfds(tmp_path, tmp_path, "train")


@pytest.mark.skipif(importlib.util.find_spec("tensorflow_datasets") is None,
                    reason="tensorflow-datasets (optional) is not installed")
def test_tfds_builder_reads_manual_zips(tmp_path):
    """Builds tfds' cityscapes from two tiny fake zips at the builder's 1024x2048."""
    from PIL import Image  # pylint: disable=import-outside-toplevel
    manual = tmp_path / "manual"
    manual.mkdir()
    image = np.zeros((1024, 2048, 3), np.uint8)
    image[:, 1024:] = 200
    label = _RAW[np.arange(1024 * 2048).reshape(1024, 2048) // 2048 % len(_RAW)].astype(
        np.uint8)  # rows cycle through the labelIds
    files = {"train": {"aachen": 1, "bochum": 2}, "val": {"frankfurt": 1},
             "test": {"berlin": 1}}
    png_dir = tmp_path / "png"
    png_dir.mkdir()
    Image.fromarray(image).save(png_dir / "image.png")
    Image.fromarray(label).save(png_dir / "label.png")
    with zipfile.ZipFile(manual / "leftImg8bit_trainvaltest.zip", "w") as images, \
            zipfile.ZipFile(manual / "gtFine_trainvaltest.zip", "w") as labels:
        for split, cities in files.items():
            for city, count in cities.items():
                for i in range(count):
                    stem = f"{city}_{i:06d}_000019"
                    images.write(png_dir / "image.png",
                                 f"leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png")
                    labels.write(png_dir / "label.png",
                                 f"gtFine/{split}/{city}/{stem}_gtFine_labelIds.png")
    with pytest.raises(DatasetError, match="needs 0.0 GiB|more than max_bytes"):
        load_cityscapes_tfds(tmp_path / "tfds", manual, "train", max_bytes=10)
    source = load_cityscapes_tfds(tmp_path / "tfds", manual, "train", image_size=(64, 128))
    assert source.names == ("aachen_000000_000019", "bochum_000000_000019",
                            "bochum_000001_000019")
    assert source.groups == ("aachen", "bochum", "bochum")
    assert source.image_size == (64, 128) and source.in_memory
    x, y = source.load(0)
    # Nearest neighbour (half-pixel centres) takes source row 16 * i + 8 for row i.
    rows = _TRAIN[(16 * np.arange(64) + 8) % len(_RAW)]
    np.testing.assert_array_equal(y.numpy(), np.repeat(rows[:, None], 128, axis=1))
    assert x.shape == (64, 128, 3) and int(x[0, 0, 0]) == 0 and int(x[0, 127, 0]) == 200
