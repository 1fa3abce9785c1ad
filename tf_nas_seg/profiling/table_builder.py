"""Measures a latency table: every distinct layer of a search space, resumably."""

import os
import sys
import time

from tf_nas_seg.profiling.layer_entry import dedupe
from tf_nas_seg.profiling.space_profile import get_profile
from tf_nas_seg.search.latency_table import LatencyTable, LatencyTableError

# Layers measured together (interleaved) and then saved: what an interruption can lose.
CHUNK = 24


def _print(message):
    print(message, file=sys.stderr, flush=True)


def open_table(path, settings):
    """The table at `path` to resume (same settings), or a new empty one.

    Raises:
        LatencyTableError: the file holds a table measured with other settings.
    """
    if not path:
        raise LatencyTableError("--table is required: the JSON file the table is written "
                                "to (e.g. --table=tables/camvid_cpu.json)")
    if not os.path.exists(path):
        return LatencyTable.create(settings, path)
    table = LatencyTable.load(path)
    saved = table.settings()
    changed = sorted(k for k in settings if saved.get(k) != settings[k])
    if changed:
        details = "; ".join(f"{k}: {saved.get(k)!r} -> {settings[k]!r}" for k in changed)
        raise LatencyTableError(
            f"{path} holds a table measured with other settings ({details}); resume it "
            "with the same settings on the same machine, or pass a new --table")
    return table


def _time_left(done, total, elapsed):
    if not done:
        return "?"
    left = elapsed / done * (total - done)
    return f"{left / 60:.1f} min" if left >= 60 else f"{left:.0f} s"


def build_table(table, timer, batch, progress=_print, passes=3):
    """Measures every key of the table's space that it lacks, saving as it goes.

    Layers are deduplicated by key (shapes repeat across cells of one stage), each is
    traced once at its exact shapes, and an interrupted build (Ctrl-C, a crash, a
    killed job) resumes from what was saved.

    Args:
        table: A LatencyTable from `open_table` (its "space" says what to measure).
        timer: A CompiledTimer on the target device.
        batch: Batch size of the measured inputs.
        progress: Called with one line per measured layer.
        passes: Interleaved timing rounds over each chunk of layers (see
            `CompiledTimer.measure_many`).

    Returns:
        (table, {"measured": n, "skipped": n, "seconds": s}).
    """
    space = table.meta["space"]
    profile = get_profile(space["method"])
    profile.check_space(space)
    entries = dedupe(profile.supernet_entries(space))
    todo = [e for e in entries if e.key not in table.entries]
    progress(f"{len(entries)} distinct layers in the space, {len(entries) - len(todo)} "
             f"already in {table.path}, {len(todo)} to measure on {table.meta['device']}")
    start = session = time.perf_counter()
    if "call_overhead_ms" not in table.meta.get("measured", []):
        table.meta["call_overhead_ms"] = round(timer.call_overhead_ms(), 5)
        table.meta.setdefault("measured", []).append("call_overhead_ms")
        progress(f"call overhead of a compiled function: "
                 f"{table.meta['call_overhead_ms']:.4f} ms (counted once per network)")
    overhead = table.meta["call_overhead_ms"]
    raw = table.meta.setdefault("raw_ms", {})
    if todo and table.meta.pop("calibration", None):
        progress("the table's calibration no longer covers it (new entries): rerun "
                 "--mode=calibrate after this build")
    done = 0
    try:
        for chunk_start in range(0, len(todo), CHUNK):
            chunk = todo[chunk_start:chunk_start + CHUNK]
            inputs, items = {}, []
            for entry in chunk:
                fn = entry.factory()
                timer.build(fn, entry.input_shapes, batch)
                if entry.input_shapes not in inputs:  # one input tensor per shape
                    inputs[entry.input_shapes] = timer.inputs(entry.input_shapes, batch)
                items.append((fn, inputs[entry.input_shapes]))
            results = timer.measure_many(items, passes=passes)
            for entry, result in zip(chunk, results):
                raw[entry.key] = round(result["median_ms"], 5)
                table.entries[entry.key] = round(max(result["median_ms"] - overhead, 0.0),
                                                 5)
                done += 1
                progress(f"[{done}/{len(todo)}] {entry.key}: {result['median_ms']:.4f} ms "
                         f"({result['runs']} runs)")
            _save(table, start)
            start = time.perf_counter()
            progress(f"saved {len(table.entries)} entries; this run: "
                     f"{time.perf_counter() - session:.0f} s, about "
                     f"{_time_left(done, len(todo), time.perf_counter() - session)} left")
    finally:
        _save(table, start)
    return table, {"measured": len(todo), "skipped": len(entries) - len(todo),
                   "seconds": table.meta["build_seconds"]}


def _save(table, start):
    table.meta["build_seconds"] = round(
        table.meta.get("build_seconds", 0.0) + time.perf_counter() - start, 2)
    table.save()


def build_networks(table, timer, batch, progress=_print):
    """Adds CAS's whole-network latencies c'_o (op o on every searched edge).

    Each network is built from the shared op library and timed end to end like a
    derived network (raw median, the call overhead included: c'_o - c'_id cancels it).
    """
    space = table.meta["space"]
    profile = get_profile(space["method"])
    networks = profile.whole_networks(space)
    if not networks:
        raise LatencyTableError(f"method {space['method']!r} has no whole-network costs")
    todo = {k: g for k, g in networks.items() if k not in table.entries}
    progress(f"{len(networks)} whole networks, {len(networks) - len(todo)} already in "
             f"{table.path}, {len(todo)} to measure")
    start = time.perf_counter()
    try:
        for i, (key, genotype) in enumerate(todo.items()):
            model = profile.build_network(space, genotype, batch)
            ms = measure_network(model, space, timer, batch)["median_ms"]
            table.entries[key] = round(ms, 5)
            elapsed = time.perf_counter() - start
            progress(f"[{i + 1}/{len(todo)}] {key}: {ms:.3f} ms  elapsed {elapsed:.0f} s, "
                     f"left {_time_left(i + 1, len(todo), elapsed)}")
            _save(table, start)
            start = time.perf_counter()
    finally:
        _save(table, start)
    return table


def measure_network(model, space, timer, batch):
    """End-to-end latency of a derived network on raw 0..255 images (inference)."""
    images = timer.inputs([(space["height"], space["width"], 3)], batch, scale=60.0,
                          offset=120.0)
    return timer.measure(lambda x: model(x, training=False), images)
