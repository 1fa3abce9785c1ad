"""`bin/benchmark`'s engine: interleaved batch-1 timing of models in several formats."""

import datetime
import os
import platform

import numpy as np
import tensorflow as tf

from tf_nas_seg.errors import UserError
from tf_nas_seg.utils.sizes import parse_hw
from tf_nas_seg.benchmark.timing import matmul_peak_gflops
from tf_nas_seg.utils.timing import latency_stats, time_calls
from tf_nas_seg.export.artifact_runner import ArtifactError, ArtifactRunner

SCHEMA_VERSION = 1


class BenchmarkError(UserError):
    """The benchmark cannot run as asked; the message says what to change."""


def parse_resolutions(text):
    """"360x480,720x960" -> [(360, 480), (720, 960)]."""
    sizes = []
    for item in (text if isinstance(text, (list, tuple)) else text.split(",")):
        item = item.strip()
        sizes.append(parse_hw(item, f"resolution {item!r}", BenchmarkError))
    if not sizes:
        raise BenchmarkError("give at least one resolution, e.g. --sizes=360x480")
    return sizes


def _version(module):
    try:
        return __import__(module).__version__
    except ImportError:
        return None


def environment(device, threads):
    """Where and with what the numbers were measured."""
    import keras

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    gpus = tf.config.list_physical_devices("GPU")
    gpu_names = [tf.config.experimental.get_device_details(g).get("device_name", g.name)
                 for g in gpus]
    return {
        "device": device, "cpu": cpu, "cpu_count": os.cpu_count(), "gpus": gpu_names,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "threads": {"requested": threads,
                    "tensorflow_intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                    "tensorflow_inter_op": tf.config.threading.get_inter_op_parallelism_threads()},
        "versions": {"python": platform.python_version(), "tensorflow": tf.__version__,
                     "keras": keras.__version__, "numpy": np.__version__,
                     "onnxruntime": _version("onnxruntime"), "tf2onnx": _version("tf2onnx")},
        "platform": platform.platform(),
    }


def run_benchmark(models, resolutions, *, runs=500, warmup=20, device="/CPU:0", threads=0,
                  num_classes=19, width_multiplier=1.0, latency_table=None, seed=0,
                  progress=None):
    """Times every model at every resolution, interleaved, batch 1.

    At each resolution the models are prepared and warmed up, then timed round-robin
    (run i of model 1, run i of model 2, ...), so drifts in machine load hit all models
    alike and their ratios stay meaningful on a busy machine. A float32 matmul peak is
    measured before and after; achieved GFLOP/s = 2 * MACs / median latency.

    Args:
        models: Paths (genotype .json, .keras, SavedModel dir, .tflite, .onnx) or
            "peer:NAME".
        resolutions: [(height, width)].
        runs: Timed runs per model and resolution.
        warmup: Untimed runs before timing.
        device: TensorFlow device ("/CPU:0", "/GPU:0").
        threads: CPU threads for TFLite and ONNX Runtime (TensorFlow's are set by the
            caller before TensorFlow starts); 0: library defaults.
        num_classes: Classes of networks built from a genotype or peer.
        width_multiplier: Width of networks built from a genotype or peer.
        latency_table: A LatencyTable whose prediction is reported beside the
            measurement, or None.
        seed: Seed of the random input image.
        progress: Optional callable(str) for progress lines.

    Returns:
        The JSON-ready report.
    """
    say = progress or (lambda _: None)
    if not models:
        raise BenchmarkError("give at least one model (--model, or several with --compare)")
    try:
        runners = [ArtifactRunner(m, num_classes=num_classes,
                                  width_multiplier=width_multiplier, device=device,
                                  threads=threads) for m in models]
    except ArtifactError as e:
        raise BenchmarkError(str(e)) from e
    say("measuring the matmul peak")
    peak_before = matmul_peak_gflops(device)
    rng = np.random.default_rng(seed)
    results = []
    for height, width in resolutions:
        image = rng.integers(0, 256, (1, height, width, 3), dtype=np.uint8)
        inputs = []
        for runner in runners:
            try:
                runner.prepare(height, width)
            except ArtifactError as e:
                raise BenchmarkError(str(e)) from e
            prepared = runner.to_input(image)
            time_calls(lambda r=runner, x=prepared: r.run(x), 0, warmup)
            inputs.append(prepared)
        say(f"{height}x{width}: {runs} interleaved runs of {len(runners)} model(s)")
        times = [[] for _ in runners]
        for _ in range(runs):
            for k, runner in enumerate(runners):
                times[k] += time_calls(lambda r=runner, x=inputs[k]: r.run(x), 1, 0)
        for runner, t in zip(runners, times):
            macs, macs_source = runner.macs(height, width)
            entry = {"model": runner.path, "format": runner.format,
                     "resolution": [height, width], "batch": 1,
                     "latency": latency_stats(t), "params": runner.params(),
                     "macs": macs, "macs_source": macs_source}
            if latency_table is not None and runner.format == "genotype":
                from tf_nas_seg.benchmark.latency_prediction import predict_latency_ms

                if runner.path.startswith("peer:"):
                    predicted, lookups, why = None, 0, "a peer is not in a search space"
                else:
                    predicted, lookups, why = predict_latency_ms(
                        runner.path, latency_table, height, width, num_classes,
                        width_multiplier)
                entry["latency_table"] = {"predicted_ms": predicted, "entries": lookups,
                                          "table": latency_table.path}
                if why:
                    entry["latency_table"]["no_prediction"] = why
                    say(f"{runner.path}: no table prediction at {height}x{width}: {why}")
            results.append(entry)
    peak_after = matmul_peak_gflops(device)
    peak = max(peak_before, peak_after)
    for entry in results:
        median_s = entry["latency"]["median_ms"] / 1e3
        if entry["macs"]:
            achieved = 2.0 * entry["macs"] / median_s / 1e9
            entry["achieved_gflops"] = achieved
            entry["fraction_of_matmul_peak"] = achieved / peak
    return {
        "schema_version": SCHEMA_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "settings": {"runs": runs, "warmup": warmup, "batch": 1, "interleaved": True,
                     "input": "random uint8 RGB, converted to each format's input dtype "
                              "outside the timed call; outputs copied to host NumPy"},
        "environment": environment(device, threads),
        "matmul_peak_gflops": {"before": peak_before, "after": peak_after, "used": peak,
                               "what": "float32 2048x2048 matmul, median of 10"},
        "results": results,
    }


def model_labels(models, formats):
    """{model path: the shortest trailing part of its path that tells it apart}.

    A SavedModel gets at least NAME/VERSION, other files their file name; two models
    whose short names collide (two `model.keras` from different runs) get as many
    parent folders as it takes to tell them apart.
    """
    paths = list(dict.fromkeys(models))
    minimum = {m: 2 if f == "saved_model" else 1 for m, f in zip(models, formats)}
    parts = {m: m.rstrip("/").split("/") for m in paths}
    depth = {m: minimum[m] for m in paths}
    while True:
        labels = {m: "/".join(parts[m][-depth[m]:]) for m in paths}
        seen = {}
        for m in paths:
            seen.setdefault(labels[m], []).append(m)
        clashes = [m for group in seen.values() if len(group) > 1 for m in group
                   if depth[m] < len(parts[m])]
        if not clashes:
            return labels
        for m in clashes:
            depth[m] += 1


def markdown_table(report):
    """The results as a Markdown table; ratios are to the first model at each resolution."""
    lines = ["| model | format | resolution | median ms | p90 ms | p99 ms | FPS | GMACs | "
             "GFLOP/s | of matmul peak | latency ratio | table prediction ms |",
             "|" + "---|" * 12]
    first = {}
    labels = model_labels([e["model"] for e in report["results"]],
                          [e["format"] for e in report["results"]])

    def label(entry):
        return labels[entry["model"]]

    for entry in report["results"]:
        res = tuple(entry["resolution"])
        first.setdefault(res, entry["latency"]["median_ms"])
        lat = entry["latency"]
        macs = entry.get("macs")
        table = entry.get("latency_table", {}).get("predicted_ms")
        lines.append("| {} | {} | {}x{} | {:.2f} | {:.2f} | {:.2f} | {:.1f} | {} | {} | {} | "
                     "{:.2f} | {} |".format(
                         label(entry),
                         entry["format"], res[0], res[1], lat["median_ms"], lat["p90_ms"],
                         lat["p99_ms"], lat["fps"],
                         f"{macs / 1e9:.3f}" if macs else "-",
                         f"{entry['achieved_gflops']:.1f}" if "achieved_gflops" in entry
                         else "-",
                         f"{entry['fraction_of_matmul_peak']:.2f}"
                         if "fraction_of_matmul_peak" in entry else "-",
                         lat["median_ms"] / first[res],
                         f"{table:.2f}" if table is not None else "-"))
    peak = report["matmul_peak_gflops"]["used"]
    lines.append("")
    lines.append(f"matmul peak {peak:.1f} GFLOP/s; device {report['environment']['device']}; "
                 f"{report['settings']['runs']} interleaved runs after "
                 f"{report['settings']['warmup']} warm-up runs; ratios to the first row of "
                 "each resolution.")
    return "\n".join(lines)
