"""The one wall-clock timing loop and the one set of latency statistics.

Used by the latency tables (`latency/timer.py`), the export check and `bin/benchmark`,
so a millisecond means the same thing in a table, a model card and a benchmark report.
No TensorFlow import: what is timed is any Python callable. Also `gc_paused`, for
the start-up of a search.
"""

import contextlib
import gc
import time

import numpy as np


def time_calls(call, runs, warmup=0, min_seconds=0.0, max_runs=None):
    """Wall times (seconds) of calls of `call()`, after `warmup` untimed ones.

    Times at least `runs` calls, and keeps going until `min_seconds` of timed calls have
    passed, but never past `max_runs` calls (None: exactly `runs` calls).
    """
    for _ in range(warmup):
        call()
    limit = runs if max_runs is None else max_runs
    times = []
    start = time.perf_counter()
    while len(times) < limit and (len(times) < runs
                                  or time.perf_counter() - start < min_seconds):
        tick = time.perf_counter()
        call()
        times.append(time.perf_counter() - tick)
    return times


def latency_stats(seconds):
    """Statistics of per-call wall times given in seconds.

    Returns:
        {"median_ms", "p90_ms", "p99_ms" (linear-interpolated percentiles), "mean_ms",
        "min_ms", "spread_ms" (interquartile: the values a quarter in from each end of
        the sorted times), "fps" (1000 / median; None for a zero median), "runs"}.
    """
    s = np.sort(np.asarray(seconds, np.float64))
    if not s.size:
        raise ValueError("latency_stats of no times")  # a bug: callers time >= 1 call
    quart = s.size // 4
    median = 1e3 * float(np.median(s))
    return {"median_ms": median, "p90_ms": 1e3 * float(np.percentile(s, 90)),
            "p99_ms": 1e3 * float(np.percentile(s, 99)), "mean_ms": 1e3 * float(s.mean()),
            "min_ms": 1e3 * float(s[0]), "spread_ms": 1e3 * float(s[-1 - quart] - s[quart]),
            "fps": 1e3 / median if median else None, "runs": int(s.size)}


@contextlib.contextmanager
def gc_paused():
    """Python's cyclic garbage collector off inside the block (as it was, after).

    NOTE: tracing a supernet's step creates some 50,000 graph operations and millions
    of Python objects in one go; each full collection the allocations trigger walks
    all of them. Paused while the step is traced and first run, the CAS demo search's
    trace took 15.9 s instead of 17.9 s and its first call 14.3 s instead of 15.3 s.
    Reference cycles made meanwhile are collected once it is back on.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
