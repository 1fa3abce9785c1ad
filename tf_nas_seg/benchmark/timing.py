"""The device's matmul peak (the timing loop and statistics: `tf_nas_seg.utils.timing`)."""

import numpy as np
import tensorflow as tf

from tf_nas_seg.utils.timing import time_calls


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
