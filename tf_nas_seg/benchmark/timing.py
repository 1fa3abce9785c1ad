"""Latency statistics and the device's matmul peak, measured the same way for every format."""

import time

import numpy as np
import tensorflow as tf


def latency_stats(seconds):
    """{median_ms, p90_ms, p99_ms, mean_ms, min_ms, fps, runs} of per-run wall times."""
    ms = np.asarray(seconds, np.float64) * 1e3
    median = float(np.median(ms))
    return {"median_ms": median, "p90_ms": float(np.percentile(ms, 90)),
            "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean()),
            "min_ms": float(ms.min()), "fps": 1e3 / median if median else None,
            "runs": int(ms.size)}


def time_calls(call, runs, warmup):
    """Wall time of `runs` calls of `call()` after `warmup` untimed ones (seconds each)."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def matmul_peak_gflops(device="/CPU:0", size=2048, runs=10, warmup=3):
    """Float32 matmul throughput (GFLOP/s, median of `runs`), the device's practical peak.

    A square [size, size] x [size, size] product, 2 * size**3 FLOPs, as one compiled
    `tf.function`; the result is copied to the host (as the model timings are) only as
    one scalar, so the copy is negligible.
    """
    with tf.device(device):
        a = tf.random.stateless_normal((size, size), seed=(1, 2))
        b = tf.random.stateless_normal((size, size), seed=(3, 4))

        @tf.function
        def product():
            return tf.reduce_sum(tf.matmul(a, b)[:1, :1])

        times = time_calls(lambda: product().numpy(), runs, warmup)
    return 2.0 * size ** 3 / float(np.median(times)) / 1e9
