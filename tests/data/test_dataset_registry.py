"""get_source / get_info by name, and import without side effects."""

import subprocess
import sys

import pytest

from tf_nas_seg.data import (CAMVID, CITYSCAPES, DATASET_NAMES, DatasetError, get_info,
                             get_source, synthetic_info)


def test_synthetic_by_name_with_kwargs_and_splits():
    train = get_source("synthetic", num_images=4, height=32, width=48, num_classes=5)
    val = get_source("synthetic", split="val", num_images=4, height=32, width=48,
                     num_classes=5)
    assert len(train) == 4 and train.image_size == (32, 48)
    assert train.info == synthetic_info(5)
    assert val.names[0] == "val_000000" and train.names[0] == "train_000000"


def test_file_data_sets_by_name(make_camvid, make_cityscapes):
    assert len(get_source("camvid", make_camvid(), "val")) == 2
    cityscapes = get_source("cityscapes", make_cityscapes(), "train", cache_max_bytes=None)
    assert cityscapes.info is CITYSCAPES and not cityscapes.in_memory


def test_get_info():
    assert get_info("camvid") is CAMVID
    assert get_info("cityscapes_tfds") is CITYSCAPES
    assert get_info("synthetic", num_classes=4).num_classes == 4
    assert set(DATASET_NAMES) == {"synthetic", "camvid", "cityscapes", "cityscapes_tfds"}
    with pytest.raises(DatasetError, match="choose one of"):
        get_info("voc")


def test_missing_root_for_cityscapes():
    with pytest.raises(DatasetError, match="'cityscapes' needs a root: the folder"):
        get_source("cityscapes", split="train")


def test_import_has_no_side_effects():
    code = ("import sys, os; before = set(os.listdir('.')); import tf_nas_seg.data; "
            "assert 'tensorflow_datasets' not in sys.modules; "
            "assert set(os.listdir('.')) == before")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_the_light_dataset_list_matches_the_registry():
    """tf_nas_seg.datasets (read by configs before TensorFlow loads) agrees with data."""
    from tf_nas_seg import datasets
    from tf_nas_seg.data import DATASET_NAMES

    assert datasets.DATASET_NAMES == DATASET_NAMES
    for name, classes in datasets.DATASET_CLASSES.items():
        assert get_info(name).num_classes == classes
