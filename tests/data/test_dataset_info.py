"""Class tables: CamVid-11, Cityscapes-19, synthetic subsets, label encodings."""

import dataclasses

import numpy as np
import pytest

from tf_nas_seg.data import (CAMVID, CAMVID_ENCODING, CITYSCAPES, CITYSCAPES_ENCODING,
                             SYNTHETIC, DatasetInfo, LabelEncoding, synthetic_info)
from tf_nas_seg.data.label_encoding import INVALID


def test_camvid_uses_standard_order_and_ignore():
    assert CAMVID.class_names == ("Sky", "Building", "Pole", "Road", "Sidewalk", "Tree",
                                  "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist")
    assert CAMVID.num_classes == len(CAMVID.palette) == 11
    assert CAMVID.ignore_label == 255


def test_cityscapes_has_19_official_classes():
    assert CITYSCAPES.num_classes == 19
    assert CITYSCAPES.class_names[0] == "road" and CITYSCAPES.class_names[-1] == "bicycle"
    assert CITYSCAPES.palette[CITYSCAPES.class_names.index("car")] == (0, 0, 142)
    assert CITYSCAPES.palette[CITYSCAPES.class_names.index("sky")] == (70, 130, 180)


@pytest.mark.parametrize("num_classes", range(3, 12))
def test_synthetic_subsets_keep_camvid_order(num_classes):
    info = synthetic_info(num_classes)
    assert info.num_classes == num_classes
    positions = [CAMVID.class_names.index(n) for n in info.class_names]
    assert positions == sorted(positions)
    assert {"Sky", "Building", "Road"} <= set(info.class_names)
    for name, colour in zip(info.class_names, info.palette):
        assert colour == CAMVID.palette[CAMVID.class_names.index(name)]


def test_synthetic_four_classes_documented_subset():
    assert synthetic_info(4).class_names == ("Sky", "Building", "Road", "Car")
    assert SYNTHETIC.class_names == CAMVID.class_names


@pytest.mark.parametrize("num_classes", [0, 2, 12])
def test_synthetic_rejects_unsupported_counts(num_classes):
    with pytest.raises(ValueError, match="3 to 11"):
        synthetic_info(num_classes)


def test_dataset_info_validates_and_is_frozen():
    with pytest.raises(ValueError, match="palette"):
        DatasetInfo("x", 2, ("a", "b"), palette=((0, 0, 0),))
    with pytest.raises(ValueError, match="ignore_label"):
        DatasetInfo("x", 2, ("a", "b"), ignore_label=1, palette=((0, 0, 0),) * 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        CAMVID.num_classes = 3


def test_camvid_encoding_maps_void_and_rejects_other_values():
    table = CAMVID_ENCODING.lookup_table()
    assert table[:11].tolist() == list(range(11))
    assert table[11] == 255 and table[255] == 255
    assert table[12] == INVALID and table[17] == INVALID
    assert CAMVID_ENCODING.first_invalid_value(np.array([[0, 11], [17, 3]])) == 17
    assert CAMVID_ENCODING.first_invalid_value(np.array([0, 10, 11])) is None


def test_cityscapes_encoding_is_the_official_label_to_train_id_map():
    table = CITYSCAPES_ENCODING.lookup_table()
    expected = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10,
                24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
    for raw in range(34):
        assert table[raw] == expected.get(raw, 255), raw
    assert table[255] == 255
    assert (table[34:255] == INVALID).all()


def test_label_encoding_requires_256_entries():
    with pytest.raises(ValueError, match="256"):
        LabelEncoding(table=(0,) * 10, description="", fix="")
