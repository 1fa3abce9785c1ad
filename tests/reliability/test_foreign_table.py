"""A latency table for another device, TensorFlow version, resolution or search space is
refused where a search reads it, naming each difference, unless --allow_foreign_table."""

import json
import logging

import numpy as np
import pytest

from tf_nas_seg.data.dataset_info import DatasetInfo
from tf_nas_seg.latency.table import LatencyTable, LatencyTableError, setting_differences
from tf_nas_seg.latency.timer import machine_settings
from tf_nas_seg.search.latency_space import search_table, space_from_config
from tf_nas_seg.search.methods import get_method
from tf_nas_seg.search.search_config import SearchConfig

TINY = dict(layout="NR", channels=4, stem_channels=8, steps=2, low_level_cell=0,
            ms_channels=4, ms_steps=2, synthetic_classes=4, target_height=32,
            target_width=32, cost="latency")
AUTORTNET = dict(method="autortnet", hyper_cells="2,2,2", channels=4, channel_growth=2,
                 steps=2, agg_channels=4, ms_channels=4, synthetic_classes=4,
                 target_height=32, target_width=32, cost="latency")


def _write_table(path, config, multiscale=True, **changes):
    """A table file recording this machine and `config`'s space, with `changes`
    ({field: value}; "space.height" changes a field of the space)."""
    space = space_from_config(config, num_classes=4, multiscale=multiscale)
    meta = {"schema_version": 3, **machine_settings("cpu"), "dtype": "float32",
            "batch": 1, "intra_op_threads": 2, "inter_op_threads": 1, "layer_repeats": 2,
            "space": space}
    for field, value in changes.items():
        if field.startswith("space."):
            space[field[len("space."):]] = value
        else:
            meta[field] = value
    path.write_text(json.dumps({**meta, "entries": {}}))
    return str(path)


def _config(path, **overrides):
    return SearchConfig(**{**TINY, "latency_table": str(path), **overrides})


def test_a_table_built_here_for_this_search_is_used(tmp_path):
    config = _config(tmp_path / "t.json")
    _write_table(tmp_path / "t.json", config)
    assert isinstance(search_table(config, 4, 32, 32), LatencyTable)
    # a CAS backbone search reads a table that also holds the multi-scale cell, and one
    # without it; the multi-scale stage needs it
    _write_table(tmp_path / "t.json", config, multiscale=False)
    search_table(config, 4, 32, 32)
    backbone_table = tmp_path / "backbone.json"
    _write_table(backbone_table, config, multiscale=False)
    with pytest.raises(LatencyTableError, match="space.multiscale_op_set: None in the "
                                                "table, 'cas_multiscale' here"):
        search_table(_config(backbone_table, stage="multiscale"), 4, 32, 32)


@pytest.mark.parametrize("changes, named, kind", [
    ({"device": "Imaginary NPU 9000"}, "device: 'Imaginary NPU 9000' in the table, '",
     "another device"),
    ({"tensorflow": "2.0.0"}, "tensorflow: '2.0.0' in the table, '",
     "another TensorFlow version"),
    ({"space.height": 360, "space.width": 480},
     "space.height: 360 in the table, 32 here; space.width: 480 in the table, 32 here",
     "another resolution"),
    ({"space.num_classes": 11}, "space.num_classes: 11 in the table, 4 here",
     "another search space"),
    ({"space.backbone_op_set": "darts"},
     "space.backbone_op_set: 'darts' in the table, 'cas_backbone' here",
     "another search space"),
])
def test_a_foreign_table_is_refused_naming_each_difference(tmp_path, changes, named, kind):
    config = _config(tmp_path / "t.json")
    _write_table(tmp_path / "t.json", config, **changes)
    with pytest.raises(LatencyTableError) as error:
        search_table(config, 4, 32, 32)
    message = str(error.value)
    assert named in message and kind in message, message
    assert "bin/latency_table --mode=build" in message and "--allow_foreign_table" in message


def test_every_difference_is_named_at_once_layout_fields_included(tmp_path):
    config = _config(tmp_path / "t.json")
    path = _write_table(tmp_path / "t.json", config, device="Other CPU", tensorflow="2.0.0")
    data = json.loads(open(path).read())
    data["space"]["layout"]["channels"] = 16
    open(path, "w").write(json.dumps(data))
    with pytest.raises(LatencyTableError) as error:
        search_table(config, 4, 32, 32)
    message = str(error.value)
    for part in ("device: 'Other CPU' in the table", "tensorflow: '2.0.0' in the table",
                 "space.layout.channels: 16 in the table, 4 here",
                 "another device, TensorFlow version, search space"):
        assert part in message, message


def test_a_gpu_table_on_a_machine_without_one_is_foreign(tmp_path):
    config = _config(tmp_path / "t.json")
    _write_table(tmp_path / "t.json", config, device="NVIDIA H100", device_type="GPU")
    here = machine_settings("GPU")
    if here["device_type"] == "GPU":
        pytest.skip("this machine has a GPU")
    with pytest.raises(LatencyTableError, match="device_type: 'GPU' in the table, 'CPU'"):
        search_table(config, 4, 32, 32)


def test_allow_foreign_table_uses_it_with_a_warning(tmp_path, caplog):
    config = _config(tmp_path / "t.json", allow_foreign_table=True)
    _write_table(tmp_path / "t.json", config, tensorflow="2.0.0")
    with caplog.at_level(logging.WARNING):
        table = search_table(config, 4, 32, 32)
    assert table.meta["tensorflow"] == "2.0.0"
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "--allow_foreign_table" in warned and "tensorflow: '2.0.0' in the table" in warned


def test_allow_foreign_table_may_change_when_a_run_resumes():
    from tf_nas_seg.search.search_config import RESUMABLE_CHANGES

    assert "allow_foreign_table" in RESUMABLE_CHANGES
    assert SearchConfig().allow_foreign_table is False


def test_autortnet_tables_are_checked_too(tmp_path):
    config = SearchConfig(**AUTORTNET, latency_table=str(tmp_path / "t.json"))
    _write_table(tmp_path / "t.json", config)
    search_table(config, 4, 32, 32)
    _write_table(tmp_path / "t.json", config, **{"space.height": 64})
    with pytest.raises(LatencyTableError, match="space.height: 64 in the table, 32 here"):
        search_table(config, 4, 32, 32)


def test_the_search_cost_model_reads_the_table_through_the_check(tmp_path):
    """Where bin/search builds its latency cost (SearchMethod.cost_model), a foreign
    table is refused before any entry is looked up."""
    config = _config(tmp_path / "t.json")
    _write_table(tmp_path / "t.json", config, tensorflow="1.15.0")
    method = get_method("cas")
    info = DatasetInfo("tiny", 4, tuple("abcd"), palette=((0, 0, 0),) * 4)
    supernet = method.build_supernet(config, method.layout(config), info)
    supernet(np.zeros((1, 32, 32, 3), "float32"))
    with pytest.raises(LatencyTableError, match="tensorflow: '1.15.0' in the table"):
        method.cost_model(supernet, config, 32, 32)


def test_setting_differences_compares_as_json_and_skips_what_is_not_needed():
    assert setting_differences({"a": [1, 2], "b": 5}, {"a": (1, 2), "b": None}) == []
    assert setting_differences({"s": {"x": 1}}, {"s": {"x": 2, "y": 3}}) == [
        ("s.x", 1, 2), ("s.y", None, 3)]
    assert setting_differences("not a dict", {"a": 1}) == [("a", None, 1)]


def test_the_benchmark_warns_that_a_foreign_tables_predictions_are_for_elsewhere(capsys):
    """bin/benchmark times networks here and shows a table's prediction beside them: a
    table from another machine is not refused there, but said to be (and recorded)."""
    from tf_nas_seg.cli.benchmark import _foreign_table_fields

    here = machine_settings("cpu")
    assert _foreign_table_fields(LatencyTable({}, dict(here), "t.json")) == {}
    found = _foreign_table_fields(LatencyTable({}, {**here, "tensorflow": "2.0.0"},
                                               "t.json"))
    assert found == {"tensorflow": {"table": "2.0.0", "here": here["tensorflow"]}}
    assert "latency table t.json was measured elsewhere (tensorflow: '2.0.0'" in (
        capsys.readouterr().err)
