"""CamVid loader on a tiny fixture tree, and on the real data set when present."""

import numpy as np
import tensorflow as tf

from tf_nas_seg.data import CAMVID, load_camvid, make_dataset, search_split


def _all_labels(source):
    dataset = tf.data.Dataset.range(len(source)).map(source.load)
    return np.stack([y.numpy() for _, y in dataset])


def test_fixture_split_counts_groups_and_names(make_camvid):
    root = make_camvid(train_counts=(2, 3, 4), val_count=2)
    train = load_camvid(root, "train")
    assert len(train) == 9 and train.info is CAMVID and train.in_memory
    assert train.groups == ("0001TP",) * 2 + ("0006R0",) * 3 + ("0016E5",) * 4
    assert train.names[0] == "0001TP_000000"
    val = load_camvid(root, "val", cache_max_bytes=None)
    assert len(val) == 2 and not val.in_memory and set(val.groups) == {"0016E5"}


def test_fixture_void_becomes_ignore(make_camvid, png):
    root = make_camvid()
    raw = np.arange(12 * 16).reshape(12, 16) % 12
    png(root / "trainannot" / "0001TP_000000.png", raw)
    for cache in (None, 2**30):
        label = _all_labels(load_camvid(root, "train", cache_max_bytes=cache))[0]
        np.testing.assert_array_equal(label, np.where(raw == 11, 255, raw))


def test_segnet_absolute_paths_are_resolved_under_root(make_camvid):
    root = make_camvid()
    lines = (root / "val.txt").read_text().split()
    (root / "val.txt").write_text("\n".join(
        f"/SegNet/CamVid/{a} /SegNet/CamVid/{b}" for a, b in zip(lines[::2], lines[1::2])))
    assert len(load_camvid(root, "val")) == 2


def test_real_camvid(real_camvid_root):
    train = load_camvid(real_camvid_root, "train")
    val = load_camvid(real_camvid_root, "val")
    assert (len(train), len(val)) == (367, 101)
    assert train.image_size == val.image_size == (360, 480)
    assert train.in_memory  # 0.25 GiB fits the default cache budget
    assert sorted(set(train.groups)) == ["0001TP", "0006R0", "0016E5"]
    assert set(val.groups) == {"0016E5"}
    values = np.unique(_all_labels(val))
    assert set(values.tolist()) == set(range(11)) | {255}

    weights, arch, record = search_split(train)
    assert record["weights"]["groups"] == {"0016E5": 204}
    assert record["arch"]["groups"] == {"0001TP": 62, "0006R0": 101}
    assert (len(weights), len(arch)) == (204, 163)

    images, labels = next(iter(make_dataset(train, batch_size=2, seed=0)))
    assert images.shape == (2, 360, 480, 3) and labels.shape == (2, 360, 480)
