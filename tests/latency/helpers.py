"""Helpers of the latency tests: a tiny CAS search space, fast timing settings and
synthetic table values (the fixture that measures a table is in conftest.py)."""

import tensorflow as tf

from tf_nas_seg.networks.cas_layout import CASLayout
from tf_nas_seg.latency.timer import CompiledTimer, resolve_device

TINY_LAYOUT = CASLayout(layout="NR", channels=4, stem_channels=8, steps=2,
                        low_level_cell=0, ms_channels=8, ms_steps=2)


def tiny_space(backbone_op_set="cas_backbone", multiscale=True, height=32, width=48,
               layout=TINY_LAYOUT):
    return {"method": "cas", "backbone_op_set": backbone_op_set,
            "multiscale_op_set": "cas_multiscale" if multiscale else None,
            "layout": layout.to_json(), "num_classes": 3, "height": height,
            "width": width}


def fast_timer():
    """A few runs per layer: figures are meaningless, the machinery is exercised."""
    return CompiledTimer(warmup=0, min_repeats=2, max_repeats=2, min_seconds=0.0)


def tiny_settings(space):
    _, name, kind = resolve_device("cpu")
    return {"device": name, "device_type": kind, "tensorflow": tf.__version__,
            "dtype": "float32", "batch": 1,
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
            "layer_repeats": 2, "space": space}


def synthetic_table(table, path=None):
    """`table`'s keys and settings with deterministic, distinct values.

    Tests that reason about values use it: a tiny table measured on a busy machine can
    come out all zeros (every layer faster than the measured call overhead).
    """
    from tf_nas_seg.latency.table import LatencyTable

    entries = {k: 0.5 + 0.25 * (sum(map(ord, k)) % 17) for k in table.entries}
    return LatencyTable(entries, {**table.meta, "call_overhead_ms": 0.1},
                        path or table.path)
