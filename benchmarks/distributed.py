"""Search step time and images/s on 1 and 2 replicas (tf.distribute).

    python benchmarks/distributed.py                     # one device vs 2 logical CPUs
    python benchmarks/distributed.py --workers           # also 2 local worker processes
    python benchmarks/distributed.py --replicas=1,2,4 --gpus   # a multi-GPU machine

Each configuration runs `bin/search`'s runner in a fresh process (logical devices and
a cluster server exist only before TensorFlow starts) on the bundled synthetic scenes,
one epoch of `--iterations` bilevel steps at the same global batch, and reads the
epoch's median step time from the run's history.json (wall time of an iteration: both
splits' batches, the architecture step and the weight step). images/s counts both
splits: 2 x global batch / median step time. Prints one JSON object.

On a CPU, logical devices and local workers share the same cores, so two replicas can
only be slower (every replica computes its half and they synchronise); the figure
measures the overhead of distribution, not a speed-up. With GPUs (`--gpus`) each
replica has its own device.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

RUN = """
import json, sys
from tf_nas_seg.search.search_config import SearchConfig
from tf_nas_seg.search.search_runner import SearchRunner
settings = json.loads(sys.argv[1])
runner = SearchRunner(SearchConfig(**settings))
summary = runner.run()
history = json.load(open(settings["run_dir"] + "/history.json"))
print(json.dumps({"median_step_seconds": history[-1]["median_step_seconds"],
                  "first_step_seconds": history[-1]["first_step_seconds"],
                  "replicas": runner.dist.num_replicas}))
"""


def _settings(args, run_dir, **extra):
    height, width = (int(v) for v in args.size.split("x"))
    # One epoch of `iterations` steps: the weights half holds iterations * batch images.
    return dict(synthetic_images=2 * args.iterations * args.batch_size,
                synthetic_height=height, synthetic_width=width, synthetic_classes=6,
                layout="NNR", channels=8, stem_channels=16, steps=2,
                batch_size=args.batch_size, iterations=args.iterations, cost="params",
                cost_lambda=0.1, run_dir=run_dir, threads=args.threads, **extra)


def _launch(settings, env=None):
    env = dict(os.environ if env is None else env, PYTHONPATH=ROOT,
               TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.Popen([sys.executable, "-c", RUN, json.dumps(settings)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(proc, name):
    out, err = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"{name} failed:\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def _row(name, result, args, wall):
    step = result["median_step_seconds"]
    return {"config": name, "replicas": result["replicas"],
            "median_step_seconds": round(step, 4),
            "images_per_second": round(2 * args.batch_size / step, 2),
            "first_step_seconds": round(result["first_step_seconds"], 1),
            "process_wall_seconds": round(wall, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", default="1,2",
                        help="replica counts to time (logical CPUs, or GPUs with --gpus)")
    parser.add_argument("--gpus", action="store_true",
                        help="mirror over the machine's GPUs instead of logical CPUs")
    parser.add_argument("--workers", action="store_true",
                        help="also time 2 worker processes on 127.0.0.1 (multi_worker)")
    parser.add_argument("--iterations", type=int, default=12)
    parser.add_argument("--batch_size", type=int, default=8, help="global batch")
    parser.add_argument("--size", default="64x64", help="HxW of the scenes")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for count in (int(v) for v in args.replicas.split(",")):
            name = f"{count} replica(s)"
            if count == 1:
                extra = {"strategy": "one_device"}
            elif args.gpus:
                extra = {"strategy": "mirrored"}
            else:
                extra = {"strategy": "mirrored", "cpu_devices": count}
            start = time.monotonic()
            result = _result(_launch(_settings(args, f"{tmp}/r{count}", **extra)), name)
            rows.append(_row(("mirrored " if count > 1 else "one_device ") + name,
                             result, args, time.monotonic() - start))
        if args.workers:
            sys.path.insert(0, ROOT)
            from tf_nas_seg.utils.distribute import free_local_ports

            workers = [f"127.0.0.1:{p}" for p in free_local_ports(2)]
            start = time.monotonic()
            procs = []
            for index in range(2):
                env = dict(os.environ, TF_CONFIG=json.dumps(
                    {"cluster": {"worker": workers},
                     "task": {"type": "worker", "index": index}}))
                procs.append(_launch(_settings(args, f"{tmp}/mw",
                                               strategy="multi_worker"), env))
            results = [_result(p, f"worker {i}") for i, p in enumerate(procs)]
            rows.append(_row("multi_worker 2 local workers", results[0], args,
                             time.monotonic() - start))
    import tensorflow as tf

    print(json.dumps({"size": args.size, "global_batch": args.batch_size,
                      "iterations": args.iterations, "tensorflow": tf.__version__,
                      "cpus": os.cpu_count(), "gpus": len(tf.config.list_physical_devices(
                          "GPU")), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
