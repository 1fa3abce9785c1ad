"""Measures a latency table: every distinct layer of a search space, resumably."""

import os
import sys
import time

from tf_nas_seg.latency.layer_entry import dedupe
from tf_nas_seg.latency.profiles import get_profile
from tf_nas_seg.latency.table import LatencyTable, LatencyTableError

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


def repeated_layer(fn, num_inputs, repeats):
    """`fn` applied `repeats` times, each copy to its own `num_inputs` inputs.

    Timed as one compiled function, the copies run one after another (inter-op threads
    1) with the thread pool busy, as layers do inside a network; distinct inputs keep
    Grappler from merging the copies into one.
    """

    def call(*inputs):
        return [fn(*inputs[i * num_inputs:(i + 1) * num_inputs]) for i in range(repeats)]

    return call


def build_table(table, timer, batch, progress=_print, passes=3):
    """Measures every key of the table's space that it lacks, saving as it goes.

    Layers are deduplicated by key (shapes repeat across cells of one stage), each is
    traced once at its exact shapes, and an interrupted build (Ctrl-C, a crash, a
    killed job) resumes from what was saved.

    An entry is a layer's marginal cost inside a network: with the table's
    `layer_repeats` R > 1, the layer alone (t_1) and R copies on distinct inputs in one
    compiled function (t_R) are timed, interleaved, and the entry is
    (t_R - t_1) / (R - 1). Timed alone, a small layer also pays the start of a call
    (threads waking, the executor starting), which in a network it does not: on the
    2-core CPU that made table sums of AutoRTNet networks 1.4-2.4x their measured
    latency. With R = 1 the entry is t_1 minus the measured call overhead.

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
    repeats = int(table.meta.get("layer_repeats") or 1)
    raw = table.meta.setdefault("raw_ms", {})
    raw_repeated = table.meta.setdefault("raw_repeated_ms", {}) if repeats > 1 else {}
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
                shapes = entry.input_shapes
                timer.build(fn, shapes, batch)
                if shapes not in inputs:  # `repeats` distinct input sets per shape
                    inputs[shapes] = timer.inputs(shapes * repeats, batch)
                items.append((fn, inputs[shapes][:len(shapes)]))
                if repeats > 1:
                    items.append((repeated_layer(fn, len(shapes), repeats), inputs[shapes]))
            results = timer.measure_many(items, passes=passes)
            per_entry = 2 if repeats > 1 else 1
            for i, entry in enumerate(chunk):
                alone = results[per_entry * i]
                raw[entry.key] = round(alone["median_ms"], 5)
                if repeats > 1:
                    many = results[per_entry * i + 1]["median_ms"]
                    raw_repeated[entry.key] = round(many, 5)
                    value = (many - alone["median_ms"]) / (repeats - 1)
                else:
                    value = alone["median_ms"] - overhead
                table.entries[entry.key] = round(max(value, 0.0), 5)
                done += 1
                progress(f"[{done}/{len(todo)}] {entry.key}: {table.entries[entry.key]:.4f} "
                         f"ms (alone {alone['median_ms']:.4f} ms, {alone['runs']} runs)")
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
