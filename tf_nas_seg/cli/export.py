"""`bin/export`: a trained model as a TF Serving SavedModel, TF-TRT, TFLite and ONNX.

Examples:
    bin/export --model=runs/demo/train/model.keras --name=demo --version=1
    bin/export --model=runs/camvid_train/best.keras --name=camvid_mine --version=1 \
        --formats=saved_model,tflite,onnx,tftrt --data_dir=../shared/datasets/camvid
"""

import dataclasses
import json
import os
import sys
from tf_nas_seg.cli.common import begin, parse_flags, user_error
from tf_nas_seg.errors import ConfigError, UserError

from absl import app, logging

from tf_nas_seg.utils.flag_fields import (config_from_flags, define_flags, setting,
                                          validate_config)

@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """Settings of bin/export (each field is a flag).

    It takes none of the shared sections (`tf_nas_seg.config_sections`): the data set,
    classes and crop come from the training run's own config.json beside --model, so
    --data_dir here only relocates that data set, and the export runs on the CPU.
    """

    model: str = setting("", "The model to export: the model.keras (or best.keras) of a "
                         "bin/train run. Its config.json and train_summary.json, beside "
                         "it, give the training data (for calibration) and fill the model "
                         "card.")
    name: str = setting("", "Model name: TF Serving serves it under this name, and the "
                        "export goes to OUT_DIR/NAME/VERSION.")
    version: int = setting(1, "Version number; TF Serving serves the highest one. An "
                           "existing version is never overwritten.", lower=1)
    formats: tuple = setting(("saved_model", "tflite", "onnx", "tftrt"), "Formats to "
                             "export: saved_model (TF Serving), tflite (fp32, fp16 and "
                             "full-int8), onnx (needs the onnx extra) and tftrt (FP32, "
                             "FP16, INT8; needs TensorFlow built with TensorRT, otherwise "
                             "skipped with a message).")
    out_dir: str = setting("saved_models", "The model base directory.")
    size: str = setting("", "HEIGHTxWIDTH of the fixed-size artefacts (TFLite, TF-TRT "
                        "engines) and of the checks; empty: the run's training crop, else "
                        "the size of the first sample image.")
    data_dir: str = setting("", "Root of the training data set when it is not where the "
                            "run's config.json says (e.g. after moving the data).")
    calibration_images: int = setting(64, "Training images used as int8 representative "
                                      "data and TF-TRT calibration data.", lower=1)
    check_images: int = setting(8, "Held-out images each artefact is checked on against "
                                "the Keras model.", lower=1)
    warmup_records: int = setting(2, "Warm-up requests written for TF Serving.", lower=0)
    latency_runs: int = setting(30, "Timed batch-1 runs per artefact for the model card's "
                                "latency (0: skip; use bin/benchmark for full numbers).",
                                lower=0)

    def __post_init__(self):
        validate_config(self)


define_flags(ExportConfig)


def parse_size(text):
    """"360x480" -> (360, 480); "" -> None."""
    if not text:
        return None
    from tf_nas_seg.utils.sizes import parse_hw

    return parse_hw(text, f"--size={text!r}")


def data_of_run(model_path, data_dir=""):
    """(train source, held-out source, training crop or None) from the run's config.json."""
    from tf_nas_seg.train import TrainConfig
    from tf_nas_seg.train.trainer import load_sources

    path = os.path.join(os.path.dirname(os.path.abspath(model_path)), "config.json")
    if not os.path.exists(path):
        raise ConfigError(f"no config.json beside {model_path}: export reads the training data "
                         "(int8 and TF-TRT calibration, checks) from the bin/train run "
                         "directory; export a model.keras from its run directory")
    with open(path, encoding="utf-8") as f:
        values = json.load(f)
    if data_dir:
        values["data_dir"] = data_dir
    known = TrainConfig.__dataclass_fields__
    config = TrainConfig(**{k: v for k, v in values.items() if k in known})
    train, val = load_sources(config)
    crop = (config.crop_height, config.crop_width) if config.crop_height else (
        (config.resize_height, config.resize_width) if config.resize_height else None)
    return train, val, crop


def main(argv):
    begin(argv, logging.WARNING)
    config = config_from_flags(ExportConfig)
    from tf_nas_seg.export import export_model

    if not config.model or not config.name:
        print("error: --model (the model.keras of a bin/train run) and --name (the served "
              "model name) are required", file=sys.stderr)
        return 2
    try:
        size = parse_size(config.size)
        train, val, crop = data_of_run(config.model, config.data_dir)
        card = export_model(
            config.model, config.name, config.version, formats=config.formats,
            out_dir=config.out_dir, size=size or crop, train_source=train, sample_source=val,
            calibration_images=config.calibration_images, check_images=config.check_images,
            warmup_records=config.warmup_records, latency_runs=config.latency_runs,
            command=" ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
            progress=lambda line: print(line, flush=True))
    except UserError as e:
        return user_error(e)
    for key, message in card["skipped"].items():
        print(f"note: {key} not exported: {message}", file=sys.stderr)
    directory = os.path.join(os.path.abspath(config.out_dir), config.name, str(config.version))
    print(json.dumps({
        "export": directory, "artifacts": sorted(card["artifacts"]),
        "skipped": sorted(card["skipped"]),
        "checks": {k: {"max_abs_diff": (None if v["max_abs_diff_probabilities"] is None
                                        else round(v["max_abs_diff_probabilities"], 6)),
                       "argmax_agreement": round(v["argmax_agreement"], 4)}
                   for k, v in card["checks_against_keras"].items()},
        "model_card": os.path.join(directory, "model_card.json")}, indent=2))
    return 0


def run():
    """Entry point of bin/export and of the `tf-nas-seg-export` console script."""
    app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
    run()
