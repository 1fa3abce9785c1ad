"""Bad input: every case raises a DatasetError that names the file and the fix."""

import zlib

import numpy as np
import pytest
import tensorflow as tf

from tf_nas_seg.data import (CAMVID, CAMVID_ENCODING, DatasetError, SegmentationSource,
                             get_source, load_camvid, load_cityscapes)


def test_missing_camvid_directory(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetError, match=f"{missing}.*not a directory.*train.txt"):
        load_camvid(missing, "train")


def test_missing_cityscapes_directory_and_split_folder(tmp_path):
    with pytest.raises(DatasetError, match="not a directory; extract"):
        load_cityscapes(tmp_path / "nowhere", "train")
    (tmp_path / "leftImg8bit").mkdir()
    with pytest.raises(DatasetError, match=r"leftImg8bit/train does not exist; extract "
                                           r"leftImg8bit_trainvaltest.zip"):
        load_cityscapes(tmp_path, "train")


def test_missing_list_file(make_camvid):
    root = make_camvid()
    (root / "val.txt").unlink()
    with pytest.raises(DatasetError, match=r"val.txt does not exist.*'image label'"):
        load_camvid(root, "val")


def test_list_file_naming_a_missing_image(make_camvid):
    root = make_camvid()
    (root / "train" / "0006R0_000001.png").unlink()
    with pytest.raises(DatasetError,
                       match=r"train.txt line 4 names train/0006R0_000001.png, but .* does "
                             r"not exist; check that .* is the folder"):
        load_camvid(root, "train")


def test_malformed_list_line(make_camvid):
    root = make_camvid()
    with (root / "train.txt").open("a") as f:
        f.write("train/only_one_field.png\n")
    with pytest.raises(DatasetError, match=r"line 10: expected 'image label'"):
        load_camvid(root, "train")


def test_image_without_label_cityscapes(make_cityscapes):
    root = make_cityscapes()
    label = root / "gtFine/train/bochum/bochum_000000_000019_gtFine_labelIds.png"
    label.unlink()
    with pytest.raises(DatasetError, match=f"has no label file {label}; extract "
                                           f"gtFine_trainvaltest.zip"):
        load_cityscapes(root, "train")


def test_mismatched_image_and_label_sizes(make_camvid, png):
    root = make_camvid()
    label = root / "trainannot" / "0016E5_000002.png"
    png(label, np.zeros((5, 5), np.uint8))
    with pytest.raises(DatasetError, match=f"is 16x12 \\(WxH\\) but its label {label} is "
                                           f"5x5; a label map must have its image's size"):
        load_camvid(root, "train")


def test_label_values_outside_the_classes_when_cached(make_camvid, png):
    root = make_camvid()
    label = root / "trainannot" / "0001TP_000001.png"
    png(label, np.full((12, 16), 17, np.uint8))
    with pytest.raises(DatasetError,
                       match=f"label file {label} has value 17 but CamVid has 11 classes "
                             f"\\(0-10\\) plus void 11; check that --dataset matches"):
        load_camvid(root, "train")


def test_label_values_outside_the_classes_when_streaming(make_camvid, png):
    root = make_camvid()
    label = root / "trainannot" / "0001TP_000001.png"
    png(label, np.full((12, 16), 17, np.uint8))
    source = load_camvid(root, "train", cache_max_bytes=None)
    dataset = tf.data.Dataset.range(len(source)).map(source.load)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=f"label file {label} has value 17 but CamVid has 11 classes"):
        list(dataset)


def test_colour_label_image(make_camvid, png):
    root = make_camvid()
    label = root / "valannot" / "0016E5_000900.png"
    png(label, np.zeros((12, 16, 3), np.uint8))
    with pytest.raises(DatasetError, match=f"label file {label} is a 'RGB' image.*single-"
                                           f"channel 8-bit ids.*not colour images"):
        load_camvid(root, "val")


def test_truncated_png_is_caught_up_front(make_camvid):
    root = make_camvid()
    image = root / "train" / "0016E5_000000.png"
    data = image.read_bytes()
    image.write_bytes(data[:len(data) - 20])
    with pytest.raises(DatasetError, match=f"image file {image} is truncated.*re-download"):
        load_camvid(root, "train", cache_max_bytes=None)


def test_garbage_file_is_caught_up_front(make_camvid):
    root = make_camvid()
    image = root / "train" / "0016E5_000000.png"
    image.write_bytes(b"this is not an image at all")
    with pytest.raises(DatasetError, match=f"image file {image} is not a readable image"):
        load_camvid(root, "train")


def _corrupt_pixel_data(path):
    """Flips bytes inside the first IDAT chunk and fixes its CRC, so that headers,
    chunk structure and file end look fine and only decompression fails."""
    data = bytearray(path.read_bytes())
    start = data.index(b"IDAT")
    length = int.from_bytes(data[start - 4:start], "big")
    body = start + 4
    data[body + 2:body + length] = bytes(length - 2)  # keep the zlib header, zero the rest
    crc = zlib.crc32(bytes(data[start:body + length]))
    data[body + length:body + length + 4] = crc.to_bytes(4, "big")
    path.write_bytes(bytes(data))


def test_corrupt_png_data_is_caught_when_decoding(make_camvid):
    root = make_camvid()
    label = root / "trainannot" / "0006R0_000002.png"
    _corrupt_pixel_data(label)
    with pytest.raises(DatasetError, match=f"cannot decode {label} .*corrupt: re-extract"):
        load_camvid(root, "train")


def test_empty_camvid_split(make_camvid):
    root = make_camvid()
    (root / "val.txt").write_text("\n")
    with pytest.raises(DatasetError, match=r"val.txt lists no examples"):
        load_camvid(root, "val")


def test_empty_cityscapes_split(make_cityscapes):
    root = make_cityscapes(cities={"aachen": 0})
    (root / "gtFine" / "train").mkdir(parents=True, exist_ok=True)
    (root / "leftImg8bit" / "train" / "aachen").mkdir(parents=True, exist_ok=True)
    with pytest.raises(DatasetError, match=r"leftImg8bit/train holds no .* the split is empty"):
        load_cityscapes(root, "train")


def test_unknown_split_names_the_choices(make_camvid, make_cityscapes):
    with pytest.raises(DatasetError, match=r"unknown CamVid split 'trainval'.*'train', 'val'"):
        load_camvid(make_camvid(), "trainval")
    with pytest.raises(DatasetError, match=r"unknown Cityscapes split 'extra'"):
        load_cityscapes(make_cityscapes(), "extra")


def test_from_files_with_no_examples():
    with pytest.raises(DatasetError, match="no examples"):
        SegmentationSource.from_files(CAMVID, [], [], encoding=CAMVID_ENCODING)


def test_registry_errors_list_the_valid_choices(tmp_path):
    with pytest.raises(DatasetError, match="unknown data set 'kitti'; choose one of "
                                           "synthetic, camvid, cityscapes, cityscapes_tfds"):
        get_source("kitti")
    with pytest.raises(DatasetError, match="'camvid' needs a root: .*valid data sets: "
                                           "synthetic, camvid, cityscapes"):
        get_source("camvid")
