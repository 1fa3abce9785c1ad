"""search_split: group-disjoint, balanced, deterministic halves and a JSON record."""

import json

import numpy as np
import pytest

from tf_nas_seg.data import DatasetError, SegmentationSource, make_street_scenes, search_split
from tf_nas_seg.data import synthetic_info

# Cityscapes train images per city (2975 in all).
CITYSCAPES_TRAIN = {"aachen": 174, "bochum": 96, "bremen": 316, "cologne": 154,
                    "darmstadt": 85, "dusseldorf": 221, "erfurt": 109, "hamburg": 248,
                    "hanover": 196, "jena": 119, "krefeld": 99, "monchengladbach": 94,
                    "strasbourg": 365, "stuttgart": 196, "tubingen": 144, "ulm": 95,
                    "weimar": 142, "zurich": 122}


def _grouped_source(counts):
    """A tiny in-memory source whose examples carry the given group sizes."""
    groups = [g for g, n in counts.items() for _ in range(n)]
    images = np.zeros((len(groups), 2, 2, 3), np.uint8)
    labels = np.zeros((len(groups), 2, 2), np.uint8)
    names = [f"{g}_{i:04d}" for i, g in enumerate(groups)]
    return SegmentationSource.from_arrays(synthetic_info(3), images, labels, names=names,
                                          groups=groups)


def test_camvid_sequences():
    source = _grouped_source({"0001TP": 62, "0006R0": 101, "0016E5": 204})
    weights, arch, record = search_split(source)
    assert set(weights.groups) == {"0016E5"} and len(weights) == 204
    assert set(arch.groups) == {"0001TP", "0006R0"} and len(arch) == 163
    assert record["method"] == "group"
    assert record["weights"] == {"num_examples": 204, "groups": {"0016E5": 204},
                                 "names": list(weights.names)}
    assert record["arch"]["groups"] == {"0001TP": 62, "0006R0": 101}
    json.dumps(record)


def test_cityscapes_cities_are_balanced_and_disjoint():
    source = _grouped_source(CITYSCAPES_TRAIN)
    weights, arch, record = search_split(source, seed=0)
    assert not set(weights.groups) & set(arch.groups)
    assert len(weights) + len(arch) == 2975
    assert 0 <= len(weights) - len(arch) <= 10  # greedy longest-first balances closely
    assert len(record["weights"]["groups"]) + len(record["arch"]["groups"]) == 18
    assert sorted(weights.names + arch.names) == sorted(source.names)
    assert search_split(source, seed=0)[2] == record


def test_halves_keep_source_order():
    source = _grouped_source({"a": 3, "b": 2, "c": 2})
    weights, arch, _ = search_split(source)
    for half in (weights, arch):
        positions = [source.names.index(n) for n in half.names]
        assert positions == sorted(positions)


def test_ungrouped_sources_split_by_seeded_permutation():
    source = make_street_scenes(num_images=9, height=32, width=32, num_classes=3)
    weights, arch, record = search_split(source, seed=4)
    assert (len(weights), len(arch)) == (5, 4)
    assert record["method"] == "index" and "groups" not in record["weights"]
    assert sorted(weights.names + arch.names) == sorted(source.names)
    assert search_split(source, seed=4)[2] == record
    assert search_split(source, seed=5)[2]["weights"] != record["weights"]
    json.dumps(record)


def test_single_group_needs_by_group_false():
    source = _grouped_source({"0016E5": 6})
    with pytest.raises(DatasetError, match="single group '0016E5'.*by_group=False"):
        search_split(source)
    weights, arch, record = search_split(source, by_group=False)
    assert (len(weights), len(arch), record["method"]) == (3, 3, "index")


def test_too_small_source():
    with pytest.raises(DatasetError, match="at least 2"):
        search_split(_grouped_source({"a": 1}))
