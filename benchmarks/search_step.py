#!/usr/bin/env python3
"""Times the bilevel search step and the forward pass of two supernets; prints JSON.

(a) the CAS supernet at the demo size (configs/demo.cfg), and (b) a DARTS-equivalent
supernet (DARTS op set, C=16, 8 cells, 4 intermediate nodes, batch 16, 32x32, 10
classes), the configuration of the DARTS reference `train_search.py`, so the step can be
compared with the reference PyTorch implementation on the same machine.

Each is a compiled `tf.function`; the figure is the median of --repeats runs after
--warmup runs (the first call traces and is reported separately). Peak memory is the
process's maximum resident set size after each phase.

    python benchmarks/search_step.py [--repeats=10] [--only=darts] [--second_order] [--threads=1]
        [--weight_optimizer=keras_sgd] [--count_only] [--graph_optimizer=on]
        [--bn_running_stats] [--recompute_edges] [--cas_size=camvid]

--graph_optimizer, --bn_running_stats and --recompute_edges are bin/search's settings
(same defaults), so
the cost of each can be measured; --cas_size=camvid times the CAS supernet of
configs/camvid.cfg (C=8, stem 24, batch 8 of 176x240, 11 classes) instead of the demo's.
"""

import json
import os
import platform
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from tf_nas_seg.networks.cas_layout import CASLayout  # noqa: E402
from tf_nas_seg.search.cas_supernet import CASSupernet  # noqa: E402
from tf_nas_seg.search.darts_supernet import DartsSupernet  # noqa: E402
from tf_nas_seg.utils.fused_sgd import FusedSGD  # noqa: E402
from tf_nas_seg.utils.run_state import set_graph_optimizer  # noqa: E402
from tf_nas_seg.utils.timing import gc_paused  # noqa: E402

flags.DEFINE_integer("repeats", 10, "Timed runs per figure (the median is reported).",
                     lower_bound=1)
flags.DEFINE_integer("warmup", 2, "Untimed runs after the first (tracing) call.",
                     lower_bound=0)
flags.DEFINE_enum("only", "all", ["all", "cas", "darts"], "Which supernet to time.")
flags.DEFINE_bool("second_order", False, "Also time the unrolled second-order step.")
flags.DEFINE_enum("weight_optimizer", "fused_sgd", ["fused_sgd", "keras_sgd"],
                  "SGD of the weights: tf_nas_seg's FusedSGD (what bin/search uses) or "
                  "keras.optimizers.SGD (the same update in generic ops), to compare.")
flags.DEFINE_bool("count_only", False, "Only build and trace the step and count its graph "
                  "nodes (no timing).")
flags.DEFINE_enum("graph_optimizer", "auto", ["auto", "on", "off"], "Grappler: as "
                  "bin/search's --graph_optimizer (auto: off without a GPU).")
flags.DEFINE_bool("bn_running_stats", False, "Update batch-norm moving statistics in the "
                  "step, as bin/search's --bn_running_stats.")
flags.DEFINE_bool("recompute_edges", False, "Recompute the edges' candidate ops in the "
                  "backward pass, as bin/search's --recompute_edges.")
flags.DEFINE_integer("threads", 1, "TensorFlow intra-op threads, as bin/search's --threads "
                     "(default 1; 0: one per core).", lower_bound=0)
flags.DEFINE_enum("cas_size", "demo", ["demo", "camvid"], "CAS supernet configuration: "
                  "configs/demo.cfg's or configs/camvid.cfg's.")
FLAGS = flags.FLAGS


def _peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _time(fn, repeats, warmup):
    t0 = time.perf_counter()
    with gc_paused():  # as bin/search runs its first step
        fn()
    first = time.perf_counter() - t0
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"first_call_s": round(first, 3), "median_s": round(statistics.median(times), 4),
            "min_s": round(min(times), 4), "max_s": round(max(times), 4)}


def _bench(name, model, weights_batch, arch_batch, second_order):
    """Times the step on two different batches, one per split (as the search runs it)."""
    images = weights_batch[0]
    w_batch = (tf.constant(weights_batch[0]), tf.constant(weights_batch[1]))
    a_batch = (tf.constant(arch_batch[0]), tf.constant(arch_batch[1]))
    t0 = time.perf_counter()
    with gc_paused():  # as bin/search builds its supernet
        model.build(images[:1].shape)
    build = time.perf_counter() - t0
    model.set_recompute_edges(FLAGS.recompute_edges)
    sgd = FusedSGD if FLAGS.weight_optimizer == "fused_sgd" else keras.optimizers.SGD
    model.configure_search(sgd(0.025, momentum=0.9),
                           keras.optimizers.Adam(3e-4, beta_1=0.5, beta_2=0.999),
                           weight_decay=3e-4, arch_weight_decay=1e-3,
                           second_order=second_order,
                           bn_running_stats=FLAGS.bn_running_stats)
    step = tf.function(lambda w, a: model.train_step((w, a)), autograph=False)  # as bin/search
    forward_train = tf.function(lambda x: model(x, training=True))
    forward_eval = tf.function(lambda x: model(x, training=False))
    result = {"name": name, "second_order": second_order,
              "batch": list(images.shape), "build_s": round(build, 3),
              "weights": int(sum(np.prod(v.shape) for v in model.weight_variables)),
              "arch_logits": int(sum(np.prod(v.shape) for v in model.arch_variables)),
              "weight_optimizer": FLAGS.weight_optimizer}
    t0 = time.perf_counter()
    with gc_paused():  # as bin/search traces its step
        concrete = step.get_concrete_function(w_batch, a_batch)
    result["step_trace_s"] = round(time.perf_counter() - t0, 3)
    graph = concrete.graph.as_graph_def()
    result["step_graph_nodes"] = len(graph.node) + sum(len(f.node_def)
                                                       for f in graph.library.function)
    if FLAGS.count_only:
        return result
    result["bilevel_step"] = _time(lambda: step(w_batch, a_batch)["weight_loss"].numpy(),
                                   FLAGS.repeats, FLAGS.warmup)
    result["peak_rss_mib_after_step"] = round(_peak_rss_mib(), 1)
    result["forward_train"] = _time(lambda: forward_train(w_batch[0]).numpy(),
                                    FLAGS.repeats, FLAGS.warmup)
    result["forward_inference"] = _time(lambda: forward_eval(w_batch[0]).numpy(),
                                        FLAGS.repeats, FLAGS.warmup)
    result["peak_rss_mib"] = round(_peak_rss_mib(), 1)
    return result


def main(argv):
    del argv
    keras.utils.set_random_seed(0)
    if FLAGS.threads:
        tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
    graph_optimizer = set_graph_optimizer(FLAGS.graph_optimizer)
    rng = np.random.default_rng(0)
    results = []
    orders = [False, True] if FLAGS.second_order else [False]
    if FLAGS.only in ("all", "darts"):
        for order in orders:
            batches = [(rng.normal(size=(16, 32, 32, 3)).astype("float32"),
                        rng.integers(0, 10, size=(16,)).astype("int32")) for _ in range(2)]
            results.append(_bench("darts_equivalent_c16_8cells_4nodes_b16_32x32",
                                  DartsSupernet(), *batches, order))
    if FLAGS.only in ("all", "cas"):
        for order in orders:
            if FLAGS.cas_size == "demo":
                # configs/demo.cfg: synthetic 64x128 scenes, 6 classes, C=8, stem 16, b 8.
                shape, classes, stem, name = (64, 128), 6, 16, "cas_supernet_demo_c8_b8_64x128"
            else:
                # configs/camvid.cfg: 176x240 crops, 11 classes, C=8, stem 24, batch 8.
                shape, classes, stem, name = ((176, 240), 11, 24,
                                              "cas_supernet_camvid_c8_b8_176x240")
            batches = [((rng.random((8, *shape, 3)) * 255).astype("float32"),
                        rng.integers(0, classes, size=(8, *shape)).astype("int32"))
                       for _ in range(2)]
            model = CASSupernet(classes, CASLayout(channels=8, stem_channels=stem))
            results.append(_bench(name, model, *batches, order))
    print(json.dumps({
        "results": results,
        "graph_optimizer": graph_optimizer, "bn_running_stats": FLAGS.bn_running_stats,
        "recompute_edges": FLAGS.recompute_edges,
        "environment": {"tensorflow": tf.__version__, "keras": keras.__version__,
                        "python": platform.python_version(), "cpus": os.cpu_count(),
                        "intra_op_threads":
                            tf.config.threading.get_intra_op_parallelism_threads()}},
        indent=2))


if __name__ == "__main__":
    app.run(main)
