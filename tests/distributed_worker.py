"""One process of the distributed tests: runs a tiny search or training and dumps its
variables, so a test can compare runs on one device, two logical devices and two
worker processes.

    python tests/distributed_worker.py search RUN_DIR OUT.npz [--flag=value ...]
    python tests/distributed_worker.py train RUN_DIR OUT.npz [--flag=value ...]

Flags are config fields (`--strategy=mirrored`, `--cpu_devices=2`, `--iterations=3`);
TF_CONFIG, when set, makes the process a worker of a multi-worker run. OUT.npz holds
every variable of the model by position ("v00012"), and for a search the architecture
logits by name ("arch/<name>"), as this process's first replica holds them, plus
"replicas_agree": 1.0 when every local replica holds the same values.
"""

import json
import os
import sys

import numpy as np

# Two cells, 2 nodes each, 32x32 scenes (tests/search/test_search_runner.py's TINY).
SEARCH = dict(synthetic_images=16, synthetic_height=32, synthetic_width=32,
              synthetic_classes=4, layout="NR", channels=4, stem_channels=8, steps=2,
              low_level_cell=0, ms_channels=4, ms_steps=2, batch_size=4, iterations=3,
              cost="params", cost_lambda=0.1, arch_lr=0.02, lr=0.05, checkpoint_every=1,
              log_every=1, flip=True, scale_min=0.75, scale_max=1.25, crop_height=32,
              crop_width=32, threads=1)
TRAIN = dict(synthetic_images=16, synthetic_val_images=4, synthetic_height=32,
             synthetic_width=32, synthetic_classes=4, batch_size=4, iterations=3,
             checkpoint_every=1, log_every=1, crop_height=32, crop_width=32,
             scale_min=0.75, scale_max=1.25, lr=0.05, peer="fast_scnn",
             width_multiplier=0.25, overlays=0, threads=1)


def _value(text):
    try:
        return json.loads(text)  # numbers and true/false
    except ValueError:
        return text


def _local_values(variable):
    import tensorflow as tf

    v = getattr(variable, "value", variable)
    return [np.asarray(x) for x in tf.distribute.get_strategy().experimental_local_results(v)] \
        if not hasattr(v, "values") else [np.asarray(x) for x in v.values]


def _run(runner):
    """runner.run(), or None after printing a UserError as the commands do (exit 2)."""
    from absl import logging

    from tf_nas_seg.cli.common import user_error
    from tf_nas_seg.errors import UserError

    logging.set_verbosity(logging.INFO)
    try:
        return runner.run()
    except UserError as e:
        user_error(e)
        return None


def main(argv):
    kind, run_dir, out = argv[1:4]
    settings = dict(SEARCH if kind == "search" else TRAIN)
    for arg in argv[4:]:
        name, text = arg[2:].split("=", 1)
        settings[name] = _value(text)
    settings["run_dir"] = run_dir
    if kind == "search":
        from tf_nas_seg.search.search_config import SearchConfig
        from tf_nas_seg.search.search_runner import SearchRunner

        runner = SearchRunner(SearchConfig(**settings))
        summary = _run(runner)
        model = runner.model
        arch = {f"arch/{v.name}": _local_values(v) for v in model.arch_variables}
    else:
        from tf_nas_seg.train.train_config import TrainConfig
        from tf_nas_seg.train.trainer import Trainer

        runner = Trainer(TrainConfig(**settings))
        summary = _run(runner)
        model = runner.model
        arch = {}
    if summary is None:
        return 2
    values = {f"v{i:05d}": _local_values(v) for i, v in enumerate(model.variables)}
    agree = all(all(np.array_equal(r[0], x) for x in r[1:])
                for r in list(values.values()) + list(arch.values()))
    arrays = {k: r[0] for k, r in {**values, **arch}.items()}
    arrays["replicas_agree"] = np.float32(agree)
    arrays["replicas"] = np.float32(runner.dist.num_replicas)
    np.savez(out, **arrays)
    iterations = summary.get("iterations_done", summary.get("iterations"))
    result = {"status": summary["status"], "iterations": iterations,
              "replicas": runner.dist.num_replicas, "agree": agree, "pid": os.getpid()}
    print("\n" + json.dumps(result), flush=True)  # after any progress bar's last line
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main(sys.argv))
