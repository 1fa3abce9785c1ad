"""`bin/evaluate`: score a trained model (.keras or SavedModel) on a data split.

Examples:
    bin/evaluate --model=runs/demo_train/model.keras --dataset=synthetic --out=eval.json
    bin/evaluate --model=runs/camvid_train/best.keras --dataset=camvid \
        --data_dir=../shared/datasets/camvid --split=val --out=eval.json --flip
"""

import dataclasses
import json
import os
import sys

from absl import app, logging

from tf_nas_seg.config_sections import DataSection, SeedSection
from tf_nas_seg.cli.common import begin, parse_flags, user_error
from tf_nas_seg.errors import UserError
from tf_nas_seg.utils.json_files import write_json_atomic
from tf_nas_seg.utils.flag_fields import (config_from_flags, define_flags, setting,
                                          validate_config)

@dataclasses.dataclass(frozen=True)
class EvaluateConfig(DataSection, SeedSection):
    """Settings of bin/evaluate (each field is a flag)."""

    model: str = setting("", "The model to score: a .keras file written by bin/train, or "
                         "a SavedModel directory (saved_models/NAME/VERSION, or NAME for "
                         "the highest version) written by bin/export.")
    split: str = setting("val", "Split to score (the official val split by default).")
    synthetic_images: int = setting(32, "Scenes of the 'synthetic' split.", lower=1)
    eval_height: int = setting(0, "Run the network at this input height and resize its "
                               "predictions back to the labels; 0: native resolution.",
                               lower=0)
    eval_width: int = setting(0, "Input width for --eval_height; 0: native.", lower=0)
    flip: bool = setting(False, "Average with the prediction of the mirrored image.")
    scales: tuple = setting(("1.0",), "Multi-scale test augmentation: input scale factors "
                            "whose predictions are averaged, e.g. 0.75,1.0,1.25.")
    batch_size: int = setting(1, "Images per forward pass.", lower=1)
    max_images: int = setting(0, "Score only the first N images; 0: all.", lower=0)
    overlays: int = setting(4, "Draw N image | truth | prediction PNGs.", lower=0)
    overlay_dir: str = setting("", "Where the overlays go; default: beside --out.")
    out: str = setting("eval.json", "Where the scores are written (JSON).")

    def __post_init__(self):
        validate_config(self)


define_flags(EvaluateConfig)


def main(argv):
    begin(argv, logging.INFO)
    config = config_from_flags(EvaluateConfig)
    from tf_nas_seg.data import get_source, open_split
    from tf_nas_seg.evaluation import evaluate_source, load_predictor

    if not config.model:
        print("error: --model is required: the model.keras of a bin/train run or a "
              "SavedModel directory", file=sys.stderr)
        return 2
    if bool(config.eval_height) != bool(config.eval_width):
        print("error: set both --eval_height and --eval_width, or neither", file=sys.stderr)
        return 2
    try:
        scales = tuple(float(s) for s in config.scales)
        if not scales or min(scales) <= 0:
            raise ValueError
    except ValueError:
        print(f"error: --scales must be positive numbers, got {config.scales}", file=sys.stderr)
        return 2
    try:
        predictor = load_predictor(config.model)
        if config.dataset == "synthetic":
            source = get_source("synthetic", None, split=config.split,
                                num_images=config.synthetic_images,
                                height=config.synthetic_height, width=config.synthetic_width,
                                num_classes=config.synthetic_classes, seed=config.seed)
        else:
            source = open_split(config.dataset, config.data_dir, config.split,
                                tfds_manual_dir=config.tfds_manual_dir,
                                tfds_max_gib=config.tfds_max_gib)
        overlay_dir = config.overlay_dir or os.path.join(
            os.path.dirname(os.path.abspath(config.out)), "overlays")
        size = (config.eval_height, config.eval_width) if config.eval_height else None
        scores = evaluate_source(predictor, source, batch_size=config.batch_size,
                                 flip=config.flip, scales=scales, size=size,
                                 max_images=config.max_images, overlays=config.overlays,
                                 overlay_dir=overlay_dir)
    except UserError as e:
        return user_error(e)
    report = {"model": os.path.abspath(config.model), "model_format": predictor.kind,
              "dataset": config.dataset, "split": config.split,
              "resolution": list(size) if size else "native",
              "test_augmentation": {"flip": config.flip, "scales": list(scales)}, **scores}
    write_json_atomic(config.out, report)
    print(json.dumps({"miou": round(scores["miou"], 4),
                      "pixel_accuracy": round(scores["pixel_accuracy"], 4),
                      "num_images": scores["num_images"], "out": os.path.abspath(config.out)},
                     indent=2))
    return 0


def run():
    """Entry point of bin/evaluate and of the `tf-nas-seg-evaluate` console script."""
    app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
    run()
