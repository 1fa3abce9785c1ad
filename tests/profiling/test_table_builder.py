"""Building tables: every key measured, settings recorded, resumable, atomic."""

import json

import pytest

from tf_nas_seg.profiling.layer_entry import dedupe
from tf_nas_seg.profiling.space_profile import get_profile
from tf_nas_seg.profiling.table_builder import build_table, open_table
from tf_nas_seg.search.latency_table import LatencyTable, LatencyTableError

from tests.profiling.conftest import fast_timer, tiny_settings, tiny_space


def test_build_measures_every_key_and_records_the_settings(tiny_table):
    keys = {e.key for e in get_profile("cas").supernet_entries(tiny_space())}
    assert set(tiny_table.entries) == keys
    assert all(v >= 0 for v in tiny_table.entries.values())
    loaded = LatencyTable.load(tiny_table.path)
    assert loaded.entries == tiny_table.entries
    for field in ("device", "tensorflow", "dtype", "batch", "intra_op_threads",
                  "inter_op_threads", "created", "build_seconds", "call_overhead_ms"):
        assert field in loaded.meta, field
    assert loaded.meta["space"]["height"] == 32
    assert loaded.network_overhead_ms > 0


class Interrupt(Exception):
    pass


def test_an_interrupted_build_resumes_where_it_stopped(tmp_path, monkeypatch):
    import tf_nas_seg.profiling.table_builder as builder

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
