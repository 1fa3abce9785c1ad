"""The latency table file: keys, JSON round trip, strict reading, documented misses."""

import json

import pytest

from tf_nas_seg.latency.table import (TABLE_SCHEMA_VERSION, LatencyTable,
                                             LatencyTableError, fixed_key, network_key,
                                             op_dilation, op_key)

SETTINGS = {"device": "cpu:test", "device_type": "CPU", "tensorflow": "2.21.0",
            "dtype": "float32", "batch": 1, "intra_op_threads": 2, "inter_op_threads": 1,
            "layer_repeats": 8,
            "space": {"method": "cas", "height": 32, "width": 48}}


def test_keys_name_op_channels_size_stride_and_dilation():
    assert op_key("cas_backbone", "conv_3x3", 8, 8, 90, 120, 1) == \
        "cas_backbone/conv_3x3|8|8|90x120|s1|d1"
    assert op_key("cas_backbone", "dil_conv_3x3", 16, 16, 45, 60, 2) == \
        "cas_backbone/dil_conv_3x3|16|16|45x60|s2|d2"
    assert op_dilation("cas_multiscale", "dil_conv_3x3_r8") == 8
    assert op_dilation("cas_backbone", "max_pool_3x3") == 1
    assert fixed_key("concat3", 8, 24, 90, 120) == "fixed/concat3|8|24|90x120|s1|d1"
    assert network_key("cas_backbone", "none", "NR-c4", 32, 48) == \
        "network/cas_backbone/none|NR-c4|32x48"


def test_json_round_trip(tmp_path):
    path = str(tmp_path / "table.json")
    table = LatencyTable.create(SETTINGS, path)
    table.entries = {op_key("cas_backbone", "conv_3x3", 4, 4, 8, 8, 1): 0.25,
                     fixed_key("add2", 4, 4, 8, 8): 0.0125}
    table.meta["call_overhead_ms"] = 0.1
    table.save()
    loaded = LatencyTable.load(path)
    assert loaded.entries == table.entries
    assert loaded.settings() == SETTINGS
    assert loaded.meta["schema_version"] == TABLE_SCHEMA_VERSION
    assert loaded.meta["created"] == table.meta["created"]
    assert loaded.network_overhead_ms == 0.1
    assert loaded.predict(list(table.entries)) == pytest.approx(0.1 + 0.25 + 0.0125)


def test_a_miss_names_the_key_and_the_command(tmp_path):
    table = LatencyTable.create(SETTINGS, str(tmp_path / "t.json"))
    key = op_key("cas_backbone", "sep_conv_3x3_x4", 4, 4, 8, 8, 2)
    with pytest.raises(LatencyTableError, match=r"no entry 'cas_backbone/sep_conv_3x3_x4"
                                                r"\|4\|4\|8x8\|s2\|d1'.*cpu:test.*"
                                                r"bin/latency_table --mode=build"):
        table.lookup(key)
    with pytest.raises(LatencyTableError, match="--mode=network"):
        table.lookup(network_key("cas_backbone", "none", "x", 8, 8))


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    (json.dumps({"schema_version": 2, "entries": {}}), "schema_version must be 3"),
    (json.dumps({"schema_version": 3, "entries": {"k": -1.0}}), "non-negative"),
    (json.dumps({"schema_version": 3, "entries": {"k": "fast"}}), "non-negative"),
    (json.dumps({"schema_version": 3, "entries": {}, "call_overhead_ms": -2}),
     "call_overhead_ms"),
])
def test_malformed_tables_are_refused_with_the_fix(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(LatencyTableError, match=message) as error:
        LatencyTable.load(str(path))
    assert "bin/latency_table" in str(error.value) or "call_overhead" in message


def test_missing_table_paths():
    with pytest.raises(LatencyTableError, match="--latency_table"):
        LatencyTable.load("")
    with pytest.raises(LatencyTableError, match="does not exist.*bin/latency_table"):
        LatencyTable.load("/nonexistent/table.json")
