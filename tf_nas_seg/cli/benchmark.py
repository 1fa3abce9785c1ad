"""`bin/benchmark`: batch-1 latency, FPS and efficiency of networks in any format.

Examples:
    bin/benchmark --model=runs/demo/train/model.keras --resolutions=360x480 --out=bench.json
    bin/benchmark --compare=runs/demo/train/model.keras,saved_models/demo/1,\
saved_models/demo/1/model_int8.tflite --resolutions=64x128 --out=compare.json
    bin/benchmark --compare=runs/demo/genotype.json,peer:fast_scnn --num_classes=11 \
        --resolutions=768x1536 --out=compare_768x1536.json
"""

import os
import sys

from absl import app, flags, logging

from tf_nas_seg.errors import UserError

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "The network to time: a genotype .json (built with "
                    "untrained weights), a .keras file, a SavedModel directory (or its TF "
                    "Serving parent), a .tflite or an .onnx file, or peer:fast_scnn.")
flags.DEFINE_list("compare", [], "Several networks or formats (as for --model) timed in one "
                  "run, interleaved run by run, with a Markdown table of ratios to the first.")
flags.DEFINE_list("resolutions", ["360x480", "720x960", "768x1536", "1024x2048"],
                  "Input sizes HEIGHTxWIDTH, batch 1.")
flags.DEFINE_integer("runs", 500, "Timed runs per model and resolution (the papers report "
                     "500).", lower_bound=1)
flags.DEFINE_integer("warmup", 20, "Untimed runs before timing.", lower_bound=0)
flags.DEFINE_enum("device", "cpu", ["cpu", "gpu"], "Where TensorFlow formats (and ONNX, "
                  "with onnxruntime-gpu) run; TFLite always runs on the CPU.")
flags.DEFINE_integer("threads", 0, "CPU threads for TensorFlow (intra-op), TFLite and ONNX "
                     "Runtime; 0: each library's default.", lower_bound=0)
flags.DEFINE_integer("num_classes", 19, "Classes of a network built from a genotype or "
                     "peer.", lower_bound=1)
flags.DEFINE_float("width_multiplier", 1.0, "Channel scaling of a network built from a "
                   "genotype or peer.", lower_bound=0.01)
flags.DEFINE_string("latency_table", "", "A latency lookup table (JSON); for a genotype "
                    ".json measured at the table's resolution, class count and layout, the "
                    "table's prediction of the whole network is reported beside the "
                    "measurement.")
flags.DEFINE_string("out", "bench.json", "Where the results are written (JSON).")
flags.DEFINE_string("markdown", "", "Also write the Markdown table here (it is always "
                    "printed).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; every setting is a --flag")
    logging.set_verbosity(logging.WARNING)
    import tensorflow as tf

    if FLAGS.threads:
        tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
    from tf_nas_seg.benchmark import (markdown_table, parse_resolutions,
                                      run_benchmark)
    from tf_nas_seg.latency.table import LatencyTable
    from tf_nas_seg.space.genotype import write_json_atomic

    models = ([FLAGS.model] if FLAGS.model else []) + list(FLAGS.compare)
    if not models:
        print("error: give --model=PATH, or --compare=PATH,PATH,... to time several",
              file=sys.stderr)
        return 2
    device = "/GPU:0" if FLAGS.device == "gpu" else "/CPU:0"
    if FLAGS.device == "gpu" and not tf.config.list_physical_devices("GPU"):
        print("error: --device=gpu, and TensorFlow sees no GPU (tensorflow-cpu, or no CUDA "
              "driver); install tensorflow[and-cuda] on a GPU machine or use --device=cpu",
              file=sys.stderr)
        return 2
    try:
        resolutions = parse_resolutions(FLAGS.resolutions)
        table = LatencyTable.load(FLAGS.latency_table) if FLAGS.latency_table else None
        report = run_benchmark(models, resolutions, runs=FLAGS.runs, warmup=FLAGS.warmup,
                               device=device, threads=FLAGS.threads,
                               num_classes=FLAGS.num_classes,
                               width_multiplier=FLAGS.width_multiplier, latency_table=table,
                               progress=lambda line: print(line, file=sys.stderr, flush=True))
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    report["command"] = " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:])
    table_text = markdown_table(report)
    report["markdown"] = table_text
    write_json_atomic(FLAGS.out, report)
    if FLAGS.markdown:
        with open(FLAGS.markdown, "w", encoding="utf-8") as f:
            f.write(table_text + "\n")
    print(table_text)
    print(f"\nwritten to {os.path.abspath(FLAGS.out)}")
    return 0


def run():
    """Entry point of bin/benchmark and of the `tf-nas-seg-benchmark` console script."""
    app.run(main)


if __name__ == "__main__":
    run()
