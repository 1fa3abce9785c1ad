"""`bin/evaluate`: score a trained model (.keras or SavedModel) on a data split.

Examples:
    bin/evaluate --model=runs/demo_train/model.keras --dataset=synthetic --out=eval.json
    bin/evaluate --model=runs/camvid_train/best.keras --dataset=camvid \
        --data_dir=../shared/datasets/camvid --split=val --out=eval.json --flip
"""

import json
import os
import sys

from absl import app, flags, logging

from tf_nas_seg.datasets import DATASET_NAMES
from tf_nas_seg.errors import UserError
from tf_nas_seg.space.genotype import write_json_atomic

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "The model to score: a .keras file written by bin/train, "
                    "or a SavedModel directory (saved_models/NAME/VERSION, or NAME for the "
                    "highest version) written by bin/export.")
flags.DEFINE_enum("dataset", "synthetic", list(DATASET_NAMES), "Data set to score on.")
flags.DEFINE_string("data_dir", "", "Root directory of the data set (not for 'synthetic'); "
                    "for 'cityscapes_tfds', where tensorflow-datasets keeps its prepared "
                    "copy (empty: its default).")
flags.DEFINE_string("tfds_manual_dir", "", "For 'cityscapes_tfds': the folder with the zips.")
flags.DEFINE_float("tfds_max_gib", 8.0, "For 'cityscapes_tfds': the most memory (GiB) the "
                   "split may take (tfds splits are held in memory).", lower_bound=0.01)
flags.DEFINE_string("split", "val", "Split to score (the official val split by default).")
flags.DEFINE_integer("synthetic_images", 32, "Scenes of the 'synthetic' split.", lower_bound=1)
flags.DEFINE_integer("synthetic_height", 64, "Height of generated scenes.", lower_bound=32)
flags.DEFINE_integer("synthetic_width", 128, "Width of generated scenes.", lower_bound=32)
flags.DEFINE_integer("synthetic_classes", 6, "Classes of generated scenes.", lower_bound=3,
                     upper_bound=11)
flags.DEFINE_integer("seed", 0, "Seed of the 'synthetic' scenes (use the training seed).",
                     lower_bound=0)
flags.DEFINE_integer("eval_height", 0, "Run the network at this input height and resize its "
                     "predictions back to the labels; 0: native resolution.", lower_bound=0)
flags.DEFINE_integer("eval_width", 0, "Input width for --eval_height; 0: native.",
                     lower_bound=0)
flags.DEFINE_bool("flip", False, "Average with the prediction of the mirrored image.")
flags.DEFINE_list("scales", ["1.0"], "Multi-scale test augmentation: input scale factors "
                  "whose predictions are averaged, e.g. 0.75,1.0,1.25.")
flags.DEFINE_integer("batch_size", 1, "Images per forward pass.", lower_bound=1)
flags.DEFINE_integer("max_images", 0, "Score only the first N images; 0: all.", lower_bound=0)
flags.DEFINE_integer("overlays", 4, "Draw N image | truth | prediction PNGs.", lower_bound=0)
flags.DEFINE_string("overlay_dir", "", "Where the overlays go; default: beside --out.")
flags.DEFINE_string("out", "eval.json", "Where the scores are written (JSON).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; every setting is a --flag")
    logging.set_verbosity(logging.INFO)
    from tf_nas_seg.data import get_source, open_split
    from tf_nas_seg.evaluation import evaluate_source, load_predictor

    if not FLAGS.model:
        print("error: --model is required: the model.keras of a bin/train run or a "
              "SavedModel directory", file=sys.stderr)
        return 2
    if bool(FLAGS.eval_height) != bool(FLAGS.eval_width):
        print("error: set both --eval_height and --eval_width, or neither", file=sys.stderr)
        return 2
    try:
        scales = tuple(float(s) for s in FLAGS.scales)
        if not scales or min(scales) <= 0:
            raise ValueError
    except ValueError:
        print(f"error: --scales must be positive numbers, got {FLAGS.scales}", file=sys.stderr)
        return 2
    try:
        predictor = load_predictor(FLAGS.model)
        if FLAGS.dataset == "synthetic":
            source = get_source("synthetic", None, split=FLAGS.split,
                                num_images=FLAGS.synthetic_images,
                                height=FLAGS.synthetic_height, width=FLAGS.synthetic_width,
                                num_classes=FLAGS.synthetic_classes, seed=FLAGS.seed)
        else:
            source = open_split(FLAGS.dataset, FLAGS.data_dir, FLAGS.split,
                                tfds_manual_dir=FLAGS.tfds_manual_dir,
                                tfds_max_gib=FLAGS.tfds_max_gib)
        overlay_dir = FLAGS.overlay_dir or os.path.join(
            os.path.dirname(os.path.abspath(FLAGS.out)), "overlays")
        size = (FLAGS.eval_height, FLAGS.eval_width) if FLAGS.eval_height else None
        scores = evaluate_source(predictor, source, batch_size=FLAGS.batch_size,
                                 flip=FLAGS.flip, scales=scales, size=size,
                                 max_images=FLAGS.max_images, overlays=FLAGS.overlays,
                                 overlay_dir=overlay_dir)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    report = {"model": os.path.abspath(FLAGS.model), "model_format": predictor.kind,
              "dataset": FLAGS.dataset, "split": FLAGS.split,
              "resolution": list(size) if size else "native",
              "test_augmentation": {"flip": FLAGS.flip, "scales": list(scales)}, **scores}
    write_json_atomic(FLAGS.out, report)
    print(json.dumps({"miou": round(scores["miou"], 4),
                      "pixel_accuracy": round(scores["pixel_accuracy"], 4),
                      "num_images": scores["num_images"], "out": os.path.abspath(FLAGS.out)},
                     indent=2))
    return 0


def run():
    """Entry point of bin/evaluate and of the `tf-nas-seg-evaluate` console script."""
    app.run(main)


if __name__ == "__main__":
    run()
