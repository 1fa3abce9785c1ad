"""Timing compiled `tf.function`s on one device, with fixed thread pools."""

import os
import platform
import time

import keras
import tensorflow as tf

from tf_nas_seg.latency.errors import TimingError  # noqa: F401 (re-exported)
from tf_nas_seg.utils.timing import latency_stats, time_calls


def configure_threads(intra_op, inter_op):
    """Fixes TensorFlow's thread pools and returns the numbers in effect.

    Must run before TensorFlow executes anything (a fresh process, as `bin/latency_table`
    is). 0 intra-op threads means one per logical core, resolved to the count so the
    table records a number.

    Raises:
        TimingError: TensorFlow already runs with other thread settings.
    """
    intra_op = int(intra_op) or (os.cpu_count() or 1)
    inter_op = int(inter_op)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op)
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    except RuntimeError:
        current = (tf.config.threading.get_intra_op_parallelism_threads(),
                   tf.config.threading.get_inter_op_parallelism_threads())
        if current != (intra_op, inter_op):
            raise TimingError(
                f"TensorFlow already runs with intra/inter-op threads {current}, not "
                f"{(intra_op, inter_op)}: measure in a fresh process") from None
    return intra_op, inter_op


def resolve_device(kind="auto"):
    """(TensorFlow device string, human-readable name, "GPU" or "CPU") for a kind.

    Args:
        kind: "auto" (a GPU when one is present, else the CPU), "gpu" or "cpu".
    """
    gpus = tf.config.list_physical_devices("GPU")
    if kind == "gpu" and not gpus:
        raise TimingError("--device=gpu, but TensorFlow sees no GPU on this machine; "
                          "use --device=cpu or install the GPU build (pip install -e "
                          ".[gpu])")
    if kind in ("gpu", "auto") and gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return "/GPU:0", details.get("device_name", "GPU"), "GPU"
    name = platform.processor() or "CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "/CPU:0", f"{name} ({os.cpu_count()} logical cores)", "CPU"


def machine_settings(device_type="auto"):
    """{"device", "device_type", "tensorflow"} a table measured here would record.

    The device is described by `resolve_device`, as `bin/latency_table` describes it
    when it builds a table, so a table built on this machine matches exactly.

    Args:
        device_type: The kind of device asked for: a table's "CPU" or "GPU" (any case),
            or "auto". A machine without a GPU describes the device a build would use
            instead (its CPU), which then differs from a GPU table's.
    """
    kind = str(device_type or "auto").lower()
    try:
        _, name, found = resolve_device(kind if kind in ("cpu", "gpu") else "auto")
    except TimingError:  # no GPU here
        _, name, found = resolve_device("auto")
    return {"device": name, "device_type": found, "tensorflow": tf.__version__}


def time_stats(times):
    """{"median_ms", "runs", "spread_ms" (interquartile)} of call times in seconds: the
    statistics a table entry stores (see `tf_nas_seg.utils.timing.latency_stats`)."""
    stats = latency_stats(times)
    return {key: stats[key] for key in ("median_ms", "runs", "spread_ms")}


class CompiledTimer:
    """Median latency of a callable compiled as a `tf.function` (inference, one device).

    The callable is traced once for the exact input shapes (a concrete function, so the
    Python dispatch is the same for a layer and a whole network), called `warmup` times,
    then timed call by call until at least `min_repeats` calls and `min_seconds` have
    passed, or `max_repeats` calls. Inputs are random normal tensors on the device.

    Args:
        device: TensorFlow device string.
        warmup: Untimed calls after tracing.
        min_repeats: Fewest timed calls.
        max_repeats: Most timed calls.
        min_seconds: Least total timed time (more calls for fast layers: a stable median).
        dtype: Input dtype.
    """

    def __init__(self, device="/CPU:0", warmup=3, min_repeats=15, max_repeats=400,
                 min_seconds=0.3, dtype="float32"):
        self.device = device
        self.warmup = int(warmup)
        self.min_repeats = int(min_repeats)
        self.max_repeats = max(int(max_repeats), self.min_repeats)
        self.min_seconds = float(min_seconds)
        self.dtype = dtype
        self._sync = getattr(getattr(tf.test, "experimental", None), "sync_devices", None)
        if "GPU" not in device:
            self._sync = None

    def inputs(self, shapes, batch, seed=0, scale=1.0, offset=0.0):
        """Random inputs of shapes (h, w, c) with a batch dimension, on the device."""
        with tf.device(self.device):
            return [tf.random.stateless_normal((batch, *s), seed=(seed, i),
                                               dtype=self.dtype) * scale + offset
                    for i, s in enumerate(shapes)]

    def build(self, fn, shapes, batch):
        """Builds Keras layers inside `fn` on symbolic inputs (no compute)."""
        fn(*[keras.KerasTensor((batch, *s), dtype=self.dtype) for s in shapes])

    def prepare(self, fn, inputs):
        """Traces `fn` for the exact input shapes and warms it up; returns a handle."""
        with tf.device(self.device):
            t0 = time.perf_counter()
            concrete = tf.function(fn).get_concrete_function(
                *[tf.TensorSpec.from_tensor(x) for x in inputs])
            self._run(concrete, inputs)
            trace = time.perf_counter() - t0
            for _ in range(self.warmup):
                self._run(concrete, inputs)
        return {"concrete": concrete, "inputs": inputs, "trace_s": trace, "times": []}

    def sample(self, prepared, repeats, seconds):
        """Adds timed calls of a prepared function: at least `repeats` and `seconds`."""
        times = prepared["times"]
        with tf.device(self.device):
            times += time_calls(lambda: self._run(prepared["concrete"], prepared["inputs"]),
                                repeats, min_seconds=seconds,
                                max_runs=self.max_repeats - len(times))

    def sample_round(self, prepared, passes, order=None):
        """One interleaved round: each prepared function gets 1/passes of its repeats and
        seconds, in `order` (indices; None: as listed)."""
        for i in range(len(prepared)) if order is None else order:
            self.sample(prepared[i], -(-self.min_repeats // passes), self.min_seconds / passes)

    @staticmethod
    def result(prepared):
        """{"median_ms", "runs", "spread_ms" (interquartile), "trace_s"} of the calls."""
        return {**time_stats(prepared["times"]), "trace_s": prepared["trace_s"]}

    def measure(self, fn, inputs):
        """Times `fn(*inputs)`; returns {"median_ms", "runs", "spread_ms", "trace_s"}."""
        return self.measure_many([(fn, inputs)], passes=1)[0]

    def measure_many(self, items, passes=3):
        """Times several functions in `passes` interleaved rounds.

        Each round gives every function 1/passes of its repeats and seconds, so a burst
        of load from elsewhere (or a clock change) spreads over all of them instead of
        inflating the few that happened to run during it.

        Args:
            items: [(fn, inputs)].
            passes: Rounds.

        Returns:
            One result dict per item (see `result`).
        """
        prepared = [self.prepare(fn, inputs) for fn, inputs in items]
        passes = max(int(passes), 1)
        for _ in range(passes):
            self.sample_round(prepared, passes)
        return [self.result(handle) for handle in prepared]

    def _run(self, concrete, inputs):
        out = concrete(*inputs)
        if self._sync is not None:
            self._sync()
        return out

    def call_overhead_ms(self):
        """Latency of a compiled function that does nothing (the per-call fixed cost).

        A layer timed alone pays it once, and so does a whole network: table entries
        store layer latencies minus this, and a network's prediction adds it once.
        """
        # NOTE: a function returning its input unchanged (tf.identity) takes a slow path
        # in TensorFlow (milliseconds per call here); one tiny add is the honest
        # "empty" function.
        x = self.inputs([(1, 1, 1)], 1)
        return self.measure(lambda t: t + 1.0, x)["median_ms"]
