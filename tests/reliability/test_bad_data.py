"""Bad data: each bad example is an error naming its file, or with --skip_bad_examples
(`skip_bad=True`) left out and counted; a wrong layout or an empty split stays an error.

The per-kind errors without skipping are tested in tests/data/test_data_errors.py; here
every kind is also skipped, on tiny trees written to tmp_path.
"""

import json
import re

import numpy as np
import pytest

from tests.data.conftest import write_png
from tests.data.test_data_errors import _corrupt_pixel_data
from tf_nas_seg.data import DatasetError, load_camvid, load_cityscapes, open_split
from tf_nas_seg.data.segmentation_source import SKIP_HINT

# train of make_camvid(): 0001TP x2, 0006R0 x3, 0016E5 x4 (9 pairs, 12x16)


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) - 20])


def _garbage(path):
    path.write_bytes(b"not an image")


BAD = {  # what is done to the tree -> the file the error names
    "truncated image": lambda root: (_truncate(root / "train/0016E5_000000.png"),
                                     "train/0016E5_000000.png"),
    "garbage image": lambda root: (_garbage(root / "train/0001TP_000001.png"),
                                   "train/0001TP_000001.png"),
    "corrupt pixel data": lambda root: (_corrupt_pixel_data(root / "trainannot/0006R0_000002.png"),
                                        "trainannot/0006R0_000002.png"),
    "label of the wrong size": lambda root: (
        write_png(root / "trainannot/0006R0_000000.png", np.zeros((12, 15), np.uint8)),
        "trainannot/0006R0_000000.png"),
    "label values outside the classes": lambda root: (
        write_png(root / "trainannot/0016E5_000003.png", np.full((12, 16), 40, np.uint8)),
        "trainannot/0016E5_000003.png"),
    "list line naming a missing file": lambda root: (
        (root / "train/0016E5_000001.png").unlink(), "train/0016E5_000001.png"),
    "list line with one path (mismatched lists)": lambda root: (
        (root / "train.txt").write_text((root / "train.txt").read_text().replace(
            " trainannot/0001TP_000000.png", "")), "train.txt line 1"),
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_a_bad_camvid_example_is_an_error_naming_it_or_skipped_and_counted(make_camvid,
                                                                          kind):
    root = make_camvid()
    _, name = BAD[kind](root)
    with pytest.raises(DatasetError, match=re.escape(name)) as error:
        load_camvid(root, "train")
    assert SKIP_HINT in str(error.value)  # says how to go on without it
    source = load_camvid(root, "train", skip_bad=True)
    assert len(source) == 8 and len(source.skipped) == 1
    assert name in source.skipped[0]["error"] and SKIP_HINT not in source.skipped[0]["error"]
    assert source.in_memory and not any(name.endswith(n + ".png") for n in source.names
                                        if "line" not in name)
    # what is left decodes, with valid labels only
    for i in range(len(source)):
        _, label = source.load(i)
        assert set(np.unique(label.numpy())) <= set(range(11)) | {255}


def test_a_split_too_large_to_cache_is_checked_once_and_streams_without_the_bad(make_camvid):
    root = make_camvid()
    write_png(root / "trainannot/0016E5_000003.png", np.full((12, 16), 40, np.uint8))
    _truncate(root / "train/0001TP_000000.png")
    source = load_camvid(root, "train", cache_max_bytes=None, skip_bad=True)
    assert not source.in_memory and len(source) == 7 and len(source.skipped) == 2
    assert "0016E5_000003" not in source.names and "0001TP_000000" not in source.names
    for i in range(len(source)):  # the graph-side label check does not fire
        source.load(i)


def test_every_example_bad_is_still_an_error(make_camvid):
    root = make_camvid(train_counts=(1, 0, 0))
    _garbage(root / "train/0001TP_000000.png")
    with pytest.raises(DatasetError, match="every example of the camvid split is bad "
                                           r"\(1 skipped; the first: image file .*0001TP"):
        load_camvid(root, "train", skip_bad=True)


def test_an_empty_split_and_a_missing_list_stay_errors_when_skipping(make_camvid):
    root = make_camvid()
    (root / "val.txt").write_text("\n")
    with pytest.raises(DatasetError, match="lists no examples"):
        load_camvid(root, "val", skip_bad=True)
    with pytest.raises(DatasetError, match="test.txt does not exist"):
        load_camvid(root, "test", skip_bad=True)


def test_cityscapes_image_without_label_is_skipped_and_counted(make_cityscapes):
    root = make_cityscapes()
    label = root / "gtFine/train/bochum/bochum_000000_000019_gtFine_labelIds.png"
    label.rename(label.with_name("bochum_000000_000019_gtFine_color.png"))
    with pytest.raises(DatasetError, match=f"has no label file {label} .*found bochum_"
                                           "000000_000019_gtFine_color.png") as error:
        load_cityscapes(root, "train")
    assert SKIP_HINT in str(error.value)
    source = load_cityscapes(root, "train", skip_bad=True)
    assert len(source) == 5 and [s["image"].endswith("bochum_000000_000019_leftImg8bit.png")
                                 for s in source.skipped] == [True]


@pytest.mark.parametrize("layout, message", [
    ("flat", r"holds 2 PNG files directly, e.g. aachen_000000_000019_leftImg8bit.png: "
             r"images must be in one folder per city"),
    ("misnamed", r"city folders hold 2 PNG files not named \*_leftImg8bit.png"),
    ("no_gtfine", r"gtFine/train does not exist; extract gtFine_trainvaltest.zip"),
])
def test_a_cityscapes_folder_with_the_wrong_layout_says_what_it_found(make_cityscapes,
                                                                      layout, message):
    root = make_cityscapes(cities={"aachen": 2})
    city = root / "leftImg8bit/train/aachen"
    if layout == "flat":
        for path in city.iterdir():
            path.rename(city.parent / path.name)
        city.rmdir()
    elif layout == "misnamed":
        for path in city.iterdir():
            path.rename(path.with_name(path.name.replace("_leftImg8bit", "")))
    else:
        import shutil

        shutil.rmtree(root / "gtFine")
    for skip in (False, True):  # a layout problem is not skipped
        with pytest.raises(DatasetError, match=message):
            load_cityscapes(root, "train", skip_bad=skip)


def test_open_split_passes_skip_bad_to_the_loader(make_camvid):
    root = make_camvid()
    _garbage(root / "train/0001TP_000001.png")
    with pytest.raises(DatasetError, match="0001TP_000001.png is not a readable image"):
        open_split("camvid", str(root), "train")
    assert len(open_split("camvid", str(root), "train", skip_bad=True).skipped) == 1


@pytest.mark.slow  # a tiny search and a tiny training on the broken tree (~1 min)
def test_search_and_training_skip_count_and_report_bad_examples(make_camvid, tmp_path):
    from tf_nas_seg.search.search_config import SearchConfig
    from tf_nas_seg.search.search_runner import run_search
    from tf_nas_seg.train import TrainConfig, run_training

    root = make_camvid(train_counts=(4, 4, 4), val_count=2, height=32, width=32)
    _truncate(root / "train/0006R0_000001.png")
    write_png(root / "valannot/0016E5_000900.png", np.full((32, 32), 99, np.uint8))
    search = dict(dataset="camvid", data_dir=str(root), layout="NR", channels=4,
                  stem_channels=8, steps=1, low_level_cell=0, batch_size=2, iterations=2,
                  cost="none")
    with pytest.raises(DatasetError, match="0006R0_000001.png is truncated"):
        run_search(SearchConfig(run_dir=str(tmp_path / "s0"), **search))
    summary = run_search(SearchConfig(run_dir=str(tmp_path / "s"), skip_bad_examples=True,
                                      **search))
    assert summary["skipped_bad_examples"]["count"] == 1
    listed = json.loads((tmp_path / "s" / "skipped_examples.json").read_text())
    assert listed["train"][0]["image"].endswith("0006R0_000001.png")
    train = dict(dataset="camvid", data_dir=str(root), peer="fast_scnn",
                 width_multiplier=0.25, batch_size=2, iterations=2, eval_every=0,
                 overlays=0)
    with pytest.raises(DatasetError, match="0006R0_000001.png is truncated"):
        run_training(TrainConfig(run_dir=str(tmp_path / "t0"), **train))
    with pytest.raises(DatasetError, match="valannot/0016E5_000900.png has value 99"):
        open_split("camvid", str(root), "val")
    summary = run_training(TrainConfig(run_dir=str(tmp_path / "t"), skip_bad_examples=True,
                                       **train))
    assert summary["skipped_bad_examples"] == {
        "count": 2, "train": 1, "val": 1, "file": str(tmp_path / "t" / "skipped_examples.json")}
    assert summary["final_val"]["num_images"] == 1
