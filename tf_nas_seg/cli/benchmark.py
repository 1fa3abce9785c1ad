"""`bin/benchmark`: batch-1 latency, FPS and efficiency of networks in any format.

Examples:
    bin/benchmark --model=runs/demo/train/model.keras --sizes=360x480 --out=bench.json
    bin/benchmark --compare=runs/demo/train/model.keras,saved_models/demo/1,\
saved_models/demo/1/model_int8.tflite --sizes=64x128 --out=compare.json
    bin/benchmark --compare=runs/demo/genotype.json,peer:fast_scnn --num_classes=11 \
        --sizes=768x1536 --out=compare_768x1536.json
"""

import dataclasses
import os
import sys

from absl import app, logging

from tf_nas_seg.config_sections import DEVICES, DeviceSection
from tf_nas_seg.cli.common import begin, parse_flags, user_error
from tf_nas_seg.errors import UserError
from tf_nas_seg.utils.flag_fields import (config_from_flags, define_flags, setting,
                                          validate_config)

@dataclasses.dataclass(frozen=True)
class BenchmarkConfig(DeviceSection):
    """Settings of bin/benchmark (each field is a flag)."""

    model: str = setting("", "The network to time: a genotype .json (built with untrained "
                         "weights), a .keras file, a SavedModel directory (or its TF "
                         "Serving parent), a .tflite or an .onnx file, or peer:fast_scnn.")
    compare: tuple = setting((), "Several networks or formats (as for --model) timed in one "
                             "run, interleaved run by run, with a Markdown table of ratios "
                             "to the first.")
    FLAG_ALIASES = {"resolutions": "sizes"}  # the older flag name

    sizes: tuple = setting(("360x480", "720x960", "768x1536", "1024x2048"),
                                 "Input sizes HEIGHTxWIDTH, batch 1.")
    runs: int = setting(500, "Timed runs per model and resolution (the papers report 500).",
                        lower=1)
    warmup: int = setting(20, "Untimed runs before timing.", lower=0)
    device: str = setting("cpu", "Where TensorFlow formats (and ONNX, with "
                          "onnxruntime-gpu) run: 'cpu', 'gpu', or 'auto' (the first GPU "
                          "when one is present); TFLite always runs on the CPU.",
                          choices=DEVICES)
    threads: int = setting(0, "CPU threads for TensorFlow (intra-op), TFLite and ONNX "
                           "Runtime; 0: each library's default.", lower=0)
    num_classes: int = setting(19, "Classes of a network built from a genotype or peer.",
                               lower=1)
    width_multiplier: float = setting(1.0, "Channel scaling of a network built from a "
                                      "genotype or peer.", lower=0.01)
    latency_table: str = setting("", "A latency lookup table (JSON); for a genotype .json "
                                 "measured at the table's resolution, class count and "
                                 "layout, the table's prediction of the whole network is "
                                 "reported beside the measurement.")
    out: str = setting("bench.json", "Where the results are written (JSON).")
    markdown: str = setting("", "Also write the Markdown table here (it is always "
                            "printed).")

    def __post_init__(self):
        validate_config(self)


define_flags(BenchmarkConfig)


def main(argv):
    begin(argv, logging.WARNING)
    config = config_from_flags(BenchmarkConfig)
    import tensorflow as tf

    if config.threads:
        tf.config.threading.set_intra_op_parallelism_threads(config.threads)
    from tf_nas_seg.benchmark import (markdown_table, parse_resolutions,
                                      run_benchmark)
    from tf_nas_seg.latency.table import LatencyTable
    from tf_nas_seg.space.genotype import write_json_atomic

    models = ([config.model] if config.model else []) + list(config.compare)
    if not models:
        print("error: give --model=PATH, or --compare=PATH,PATH,... to time several",
              file=sys.stderr)
        return 2
    wants_gpu = config.device == "gpu" or (config.device == "auto"
                                           and tf.config.list_physical_devices("GPU"))
    device = "/GPU:0" if wants_gpu else "/CPU:0"
    if config.device == "gpu" and not tf.config.list_physical_devices("GPU"):
        print("error: --device=gpu, and TensorFlow sees no GPU (tensorflow-cpu, or no CUDA "
              "driver); install tensorflow[and-cuda] on a GPU machine or use --device=cpu",
              file=sys.stderr)
        return 2
    try:
        resolutions = parse_resolutions(config.sizes)
        table = LatencyTable.load(config.latency_table) if config.latency_table else None
        foreign = _foreign_table_fields(table)
        report = run_benchmark(models, resolutions, runs=config.runs, warmup=config.warmup,
                               device=device, threads=config.threads,
                               num_classes=config.num_classes,
                               width_multiplier=config.width_multiplier, latency_table=table,
                               progress=lambda line: print(line, file=sys.stderr, flush=True))
    except UserError as e:
        return user_error(e)
    report["command"] = " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:])
    if foreign:
        report["latency_table_measured_elsewhere"] = foreign
    table_text = markdown_table(report)
    report["markdown"] = table_text
    write_json_atomic(config.out, report)
    if config.markdown:
        with open(config.markdown, "w", encoding="utf-8") as f:
            f.write(table_text + "\n")
    print(table_text)
    print(f"\nwritten to {os.path.abspath(config.out)}")
    return 0


def _foreign_table_fields(table):
    """The device and TensorFlow fields where the table differs from this machine, with a
    warning: its predictions sit beside latencies measured here, not where it was built."""
    if table is None:
        return {}
    from tf_nas_seg.latency.table import setting_differences
    from tf_nas_seg.latency.timer import machine_settings

    found = setting_differences(table.settings(),
                                machine_settings(table.meta.get("device_type")))
    if found:
        print(f"warning: latency table {table.path} was measured elsewhere ("
              + "; ".join(f"{k}: {a!r} in the table, {b!r} here" for k, a, b in found)
              + "): its predictions are for that machine, not the latencies measured here",
              file=sys.stderr)
    return {k: {"table": a, "here": b} for k, a, b in found}


def run():
    """Entry point of bin/benchmark and of the `tf-nas-seg-benchmark` console script."""
    app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
    run()
