"""`open_split`: how search, training and evaluation hand their flags to the loaders."""

import numpy as np
import pytest

from tf_nas_seg import data
from tf_nas_seg.data import CITYSCAPES, DatasetError, SegmentationSource, open_split
from tf_nas_seg.data import registry
from tf_nas_seg.search.search_config import SearchConfig
from tf_nas_seg.search.search_runner import SearchRunner
from tf_nas_seg.train.train_config import TrainConfig
from tf_nas_seg.train.trainer import load_sources


@pytest.fixture
def fake_tfds(monkeypatch):
    """Replaces the tfds loader; records its arguments, returns 2 images per city."""
    calls = []

    def load(data_dir, manual_dir, split="train", *, image_size=None, max_bytes=None,
             skip_bad=False):
        calls.append({"data_dir": data_dir, "manual_dir": manual_dir, "split": split,
                      "image_size": image_size, "max_bytes": max_bytes})
        h, w = image_size or (16, 32)
        cities = ("aachen", "bochum", "bremen", "jena")
        names = [f"{c}_{i:06d}_000019" for c in cities for i in range(2)]
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (len(names), h, w, 3), dtype=np.uint8)
        labels = rng.integers(0, 19, (len(names), h, w), dtype=np.uint8)
        return SegmentationSource.from_arrays(CITYSCAPES, images, labels, names=names,
                                              groups=[n.rsplit("_", 2)[0] for n in names])

    monkeypatch.setattr(registry, "load_cityscapes_tfds", load)
    return calls


def test_tfds_gets_manual_dir_prepared_dir_size_and_budget(fake_tfds):
    source = open_split("cityscapes_tfds", "/prepared", "val", tfds_manual_dir="/zips",
                        image_size=(32, 64), tfds_max_gib=0.5)
    assert fake_tfds == [{"data_dir": "/prepared", "manual_dir": "/zips", "split": "val",
                          "image_size": (32, 64), "max_bytes": 2**29}]
    assert len(source) == 8 and source.image_size == (32, 64)


def test_tfds_defaults_are_none_not_empty_strings(fake_tfds):
    open_split("cityscapes_tfds", "", "train")
    assert fake_tfds[0]["data_dir"] is None and fake_tfds[0]["manual_dir"] is None
    assert fake_tfds[0]["image_size"] is None


@pytest.mark.parametrize("name", ["camvid", "cityscapes"])
def test_disk_data_sets_need_data_dir(name):
    with pytest.raises(DatasetError, match=f"--dataset={name} needs --data_dir"):
        open_split(name, "", "train")


def test_search_reads_tfds_resized_to_its_resize_flags(fake_tfds, tmp_path):
    config = SearchConfig(dataset="cityscapes_tfds", data_dir=str(tmp_path / "tfds"),
                          tfds_manual_dir=str(tmp_path / "zips"), resize_height=32,
                          resize_width=64, tfds_max_gib=3.0, batch_size=2,
                          run_dir=str(tmp_path / "run"))
    runner = SearchRunner(config)
    (tmp_path / "run").mkdir()
    runner._load_data()  # pylint: disable=protected-access
    assert fake_tfds == [{"data_dir": str(tmp_path / "tfds"),
                          "manual_dir": str(tmp_path / "zips"), "split": "train",
                          "image_size": (32, 64), "max_bytes": 3 * 2**30}]
    assert runner.info is CITYSCAPES and runner.input_hw == (32, 64)
    # split by city: no city on both sides
    assert not set(runner.weights_src.groups) & set(runner.arch_src.groups)


def test_training_resizes_the_tfds_train_split_only(fake_tfds):
    config = TrainConfig(dataset="cityscapes_tfds", tfds_manual_dir="/zips",
                         resize_height=32, resize_width=64)
    train, val = load_sources(config)
    assert [c["split"] for c in fake_tfds] == ["train", "val"]
    assert fake_tfds[0]["image_size"] == (32, 64) and fake_tfds[1]["image_size"] is None
    assert train.image_size == (32, 64) and val.image_size == (16, 32)


def test_open_split_is_exported():
    assert data.open_split is open_split
