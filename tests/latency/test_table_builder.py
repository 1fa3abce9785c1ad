"""Building tables: every key measured, settings recorded, resumable, atomic."""

import json

import pytest

from tf_nas_seg.latency.layer_entry import dedupe
from tf_nas_seg.latency.profiles import get_profile
from tf_nas_seg.latency.timer import CompiledTimer
from tf_nas_seg.latency.builder import build_table, open_table, repeated_layer
from tf_nas_seg.latency.table import LatencyTable, LatencyTableError

from tests.latency.helpers import fast_timer, tiny_settings, tiny_space


def test_build_measures_every_key_and_records_the_settings(tiny_table):
    keys = {e.key for e in get_profile("cas").supernet_entries(tiny_space())}
    assert set(tiny_table.entries) == keys
    assert all(v >= 0 for v in tiny_table.entries.values())
    loaded = LatencyTable.load(tiny_table.path)
    assert loaded.entries == tiny_table.entries
    for field in ("device", "tensorflow", "dtype", "batch", "intra_op_threads",
                  "inter_op_threads", "layer_repeats", "created", "build_seconds",
                  "call_overhead_ms"):
        assert field in loaded.meta, field
    assert loaded.meta["space"]["height"] == 32
    assert loaded.network_overhead_ms > 0
    # layer_repeats 2: the layer alone and two copies were both timed, for every key
    assert set(loaded.meta["raw_ms"]) == set(loaded.meta["raw_repeated_ms"]) == keys


def test_repeated_layer_applies_each_copy_to_its_own_inputs():
    calls = []

    def layer(a, b):
        calls.append((a, b))
        return a + b

    outputs = repeated_layer(layer, 2, 3)(1, 2, 10, 20, 100, 200)
    assert outputs == [3, 30, 300]
    assert calls == [(1, 2), (10, 20), (100, 200)]


def test_entry_is_the_marginal_cost_of_one_more_copy(tmp_path):
    """With R copies timed at t_R and one at t_1, the entry is (t_R - t_1) / (R - 1)."""

    class ScriptedTimer(CompiledTimer):
        """Reports 2 ms + 3 ms per copy of the layer (a start-up cost and a layer cost)."""

        def measure_many(self, items, passes=3):
            results = []
            for fn, inputs in items:
                copies = len(inputs)  # every layer here takes one input
                results.append({"median_ms": 2.0 + 3.0 * copies, "runs": 1,
                                "spread_ms": 0.0, "trace_s": 0.0})
            return results

        def call_overhead_ms(self):
            return 0.5

    space = tiny_space()
    settings = {**tiny_settings(space), "layer_repeats": 4}
    table = open_table(str(tmp_path / "t.json"), settings)
    table, _ = build_table(table, ScriptedTimer(), batch=1, progress=lambda _: None)
    one_input = [e.key for e in get_profile("cas").supernet_entries(space)
                 if len(e.input_shapes) == 1]
    assert one_input
    for key in one_input:
        assert table.entries[key] == pytest.approx(3.0)
        assert table.meta["raw_ms"][key] == pytest.approx(5.0)
        assert table.meta["raw_repeated_ms"][key] == pytest.approx(14.0)
    # R = 1: the layer alone minus the call overhead
    table1 = open_table(str(tmp_path / "t1.json"), {**settings, "layer_repeats": 1})
    table1, _ = build_table(table1, ScriptedTimer(), batch=1, progress=lambda _: None)
    for key in one_input:
        assert table1.entries[key] == pytest.approx(4.5)


class Interrupt(Exception):
    pass


def test_an_interrupted_build_resumes_where_it_stopped(tmp_path, monkeypatch):
    import tf_nas_seg.latency.builder as builder

    monkeypatch.setattr(builder, "CHUNK", 8)
    space = tiny_space(multiscale=False)
    path = str(tmp_path / "t.json")
    lines = []

    def stop_after_two_chunks(line):
        lines.append(line)
        if line.startswith("saved") and len(lines) > 17:
            raise Interrupt()

    with pytest.raises(Interrupt):
        build_table(open_table(path, tiny_settings(space)), fast_timer(), 1,
                    progress=stop_after_two_chunks)
    saved = json.loads(open(path).read())["entries"]
    assert len(saved) == 16
    total = len(dedupe(get_profile("cas").supernet_entries(space)))
    table, stats = build_table(open_table(path, tiny_settings(space)), fast_timer(), 1,
                               progress=lambda _: None)
    assert stats == {"measured": total - 16, "skipped": 16,
                     "seconds": table.meta["build_seconds"]}
    assert {k: table.entries[k] for k in saved} == saved  # not measured again
    assert len(table.entries) == total


def test_resuming_with_other_settings_is_refused(tiny_table):
    other = tiny_settings(tiny_space(height=64))
    with pytest.raises(LatencyTableError, match=r"other settings \(space: .*pass a new "
                                                r"--table"):
        open_table(tiny_table.path, other)
    with pytest.raises(LatencyTableError, match="--table is required"):
        open_table("", other)
