"""`bin/export`'s engine: every format into one atomically written TF Serving version dir."""

import datetime
import json
import os
import re
import shutil
import sys
import tempfile

import numpy as np
import tensorflow as tf

from tf_nas_seg.errors import UserError
from tf_nas_seg.utils.timing import latency_stats, time_calls
from tf_nas_seg.export.artifact_runner import ArtifactRunner, load_keras_model
from tf_nas_seg.export.onnx_export import OnnxUnavailableError, convert_onnx
from tf_nas_seg.export.saved_model_export import (INPUT_NAME, PROBABILITIES_SIGNATURE, SIGNATURE,
                                                  export_saved_model)
from tf_nas_seg.export.tflite_export import TFLITE_MODES, convert_tflite
from tf_nas_seg.export.tftrt_export import TFTRT_PRECISIONS, convert_tftrt, tensorrt_available
from tf_nas_seg.export.warmup_requests import WARMUP_FILE

EXPORT_FORMATS = ("saved_model", "tflite", "onnx", "tftrt")
MODEL_CARD = "model_card.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ExportError(UserError):
    """The export cannot run as asked; the message says what to change."""


def _softmax(scores):
    scores = np.asarray(scores, np.float64)
    scores = np.exp(scores - scores.max(-1, keepdims=True))
    return scores / scores.sum(-1, keepdims=True)


def compare_outputs(reference_logits, outputs, are_probabilities):
    """{max_abs_diff (of probabilities), argmax_agreement} of one artefact vs Keras.

    `outputs` may be class ids [B, H, W] (an artefact that returns a class map only):
    then only the argmax agreement is compared and max_abs_diff is None.
    """
    ref = _softmax(reference_logits)
    outputs = np.asarray(outputs)
    if outputs.ndim == ref.ndim - 1:
        return {"max_abs_diff_probabilities": None,
                "argmax_agreement": float((outputs == ref.argmax(-1)).mean())}
    out = np.asarray(outputs, np.float64) if are_probabilities else _softmax(outputs)
    return {"max_abs_diff_probabilities": float(np.abs(out - ref).max()),
            "argmax_agreement": float((out.argmax(-1) == ref.argmax(-1)).mean())}


def check_artifact(runner, model, images, latency_runs=0):
    """Runs `runner` and the Keras `model` on each uint8 image [N, H, W, 3] and compares.

    Returns:
        {max_abs_diff_probabilities, argmax_agreement, images, size, latency (optional)}.
    """
    probabilities = runner.format == "saved_model" and runner._output == "probabilities"
    worst, agree = None, []
    for image in images:
        ref = model(tf.constant(image[None].astype(np.float32)), training=False).numpy()
        result = compare_outputs(ref, runner(image[None]), probabilities)
        if result["max_abs_diff_probabilities"] is not None:
            worst = max(worst or 0.0, result["max_abs_diff_probabilities"])
        agree.append(result["argmax_agreement"])
    check = {"max_abs_diff_probabilities": worst, "argmax_agreement": float(np.mean(agree)),
             "images": int(len(images)), "size": list(images.shape[1:3])}
    if latency_runs:
        x = runner.to_input(images[:1])
        check["latency"] = latency_stats(time_calls(lambda: runner.run(x), latency_runs,
                                                    min(5, latency_runs)))
    return check


def _resize_uint8(image, size):
    image = tf.convert_to_tensor(image)
    if tuple(image.shape[:2]) != tuple(size):
        image = tf.image.resize(tf.cast(image, tf.float32), size)
    return np.asarray(tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8))


def source_images(source, count, size):
    """The first `count` images of a SegmentationSource as uint8 [N, H, W, 3] at `size`."""
    count = min(count, len(source))
    return np.stack([_resize_uint8(source.load(tf.constant(i, tf.int64))[0], size)
                     for i in range(count)]) if count else np.zeros((0, *size, 3), np.uint8)


def _run_info(model_path):
    """(config.json, train_summary.json) of the bin/train run holding `model_path`."""
    directory = os.path.dirname(os.path.abspath(model_path))
    found = []
    for name in ("config.json", "train_summary.json"):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                found.append(json.load(f))
        else:
            found.append(None)
    return found


def _files(directory):
    sizes = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            sizes[os.path.relpath(path, directory)] = os.path.getsize(path)
    return sizes


def portable_path(path):
    """`path` relative to the working directory when it lies under it, else absolute.

    Model cards travel with the model (shipped in the repository, copied to a
    server): a path relative to the repository root stays true on every clone, an
    absolute one only on the machine that exported it.
    """
    path = os.path.abspath(path)
    relative = os.path.relpath(path, os.getcwd())
    return path if relative.startswith(os.pardir) else relative


def _shell_dir(path):
    """A directory for a shell command: "$PWD/rel" under the working directory."""
    path = portable_path(path)
    return path if os.path.isabs(path) else f'"$PWD/{path}"'


def _resolve_genotype(config, model_path):
    path = (config or {}).get("genotype")
    if not path:
        return None, None
    candidates = [path, os.path.join(os.path.dirname(os.path.abspath(model_path)), path)]
    cwd_parent = os.path.dirname(os.path.dirname(os.path.abspath(model_path)))
    candidates.append(os.path.join(cwd_parent, os.path.basename(path)))
    for candidate in candidates:
        if os.path.exists(candidate):
            with open(candidate, encoding="utf-8") as f:
                return portable_path(candidate), json.load(f)
    return path, None


def export_model(model_path, name, version, *, formats=("saved_model",), out_dir="saved_models",
                 size=None, train_source=None, sample_source=None, calibration_images=64,
                 check_images=8, warmup_records=2, latency_runs=30, command=None,
                 progress=None):
    """Exports a trained `.keras` model to `out_dir/name/version/` in the chosen formats.

    Everything is written to a temporary directory beside the target and renamed into
    place at the end, so a failed export leaves no version directory (TF Serving would
    otherwise load a half-written one).

    Args:
        model_path: The model.keras (or best.keras) of a bin/train run; its config.json
            and train_summary.json, when beside it, fill the model card.
        name: Model name (the TF Serving model name).
        version: Version number (a positive integer; must not exist yet).
        formats: Subset of `EXPORT_FORMATS`.
        out_dir: The model base directory.
        size: (height, width) of the fixed-size formats (TFLite, TF-TRT engines) and of
            the checks; default: the size of the first sample image.
        train_source: SegmentationSource for int8 representative and TF-TRT calibration
            data (training images).
        sample_source: SegmentationSource of held-out images for checks and warm-up.
        calibration_images: Training images used for calibration.
        check_images: Sample images each artefact is checked on.
        warmup_records: Warm-up requests written for TF Serving.
        latency_runs: Timed batch-1 runs per artefact for the model card (0: none).
        command: The command line, recorded in the model card.
        progress: Optional callable(str) for progress lines.

    Returns:
        The model card (dict), also written to the version directory.
    """
    say = progress or (lambda _: None)
    formats = tuple(dict.fromkeys(formats))
    unknown = [f for f in formats if f not in EXPORT_FORMATS]
    if unknown or not formats:
        raise ExportError(f"unknown format(s) {unknown}; choose from {list(EXPORT_FORMATS)}")
    if not _NAME.match(name or ""):
        raise ExportError(f"--name={name!r}: use letters, digits, '_', '-' or '.' (it "
                          "becomes the TF Serving model name and a folder name)")
    if int(version) < 1:
        raise ExportError(f"--version={version}: TF Serving versions are positive integers")
    if not os.path.exists(model_path):
        raise ExportError(f"model {model_path} does not exist; pass the model.keras that "
                          "bin/train wrote")
    if sample_source is None:
        raise ExportError("export needs sample images to check the artefacts against")
    model_dir = os.path.join(os.path.abspath(out_dir), name)
    final = os.path.join(model_dir, str(int(version)))
    if os.path.exists(final):
        raise ExportError(f"{final} already exists; TF Serving versions are immutable, so "
                          f"export a new --version (e.g. {_next_version(model_dir)})")
    model = load_keras_model(model_path)
    config, summary = _run_info(model_path)
    if size is None:
        first = sample_source.load(tf.constant(0, tf.int64))[0]
        size = tuple(int(d) for d in first.shape[:2])
    size = (int(size[0]), int(size[1]))
    samples = source_images(sample_source, check_images, size)
    needs_calibration = "tftrt" in formats or "tflite" in formats
    calibration = (source_images(train_source, calibration_images, size)
                   if needs_calibration and train_source is not None else None)

    os.makedirs(model_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=model_dir, prefix=f".tmp-{int(version)}-")
    artifacts, checks, skipped = {}, {}, {}
    try:
        # ExportArchive wants a fresh directory: the SavedModel is written to a staging
        # folder (TF-TRT converts from it too) and moved into the version folder last.
        staging = os.path.join(tmp, ".saved_model")
        if "saved_model" in formats or "tftrt" in formats:
            say("SavedModel")
            export_saved_model(model, staging, model_name=name,
                               warmup_images=[image[None] for image in
                                              samples[:warmup_records]])
        if "saved_model" in formats:
            artifacts["saved_model"] = {
                "path": ".", "signature": SIGNATURE,
                "inputs": {INPUT_NAME: "uint8 [batch, height, width, 3], raw RGB, all "
                                       "dimensions dynamic"},
                "outputs": {"class_map": "int32 [batch, height, width]"},
                "signatures": {
                    SIGNATURE: "class_map only (what TF Serving runs by default)",
                    PROBABILITIES_SIGNATURE: "class_map and probabilities float32 "
                                             "[batch, height, width, classes]"},
                "warmup": f"assets.extra/{WARMUP_FILE}"}
            checks["saved_model"] = _check(staging, model, samples, latency_runs, say,
                                           label="saved_model")
        if "tflite" in formats:
            for mode in TFLITE_MODES:
                say(f"TFLite {mode}")
                if mode == "int8" and calibration is None:
                    raise ExportError("int8 TFLite needs training images: give the run's "
                                      "config.json or --dataset")
                flatbuffer = convert_tflite(model, mode, size, calibration)
                filename = f"model_{mode}.tflite"
                with open(os.path.join(tmp, filename), "wb") as f:
                    f.write(flatbuffer)
                artifacts[f"tflite_{mode}"] = {
                    "path": filename, "size": list(size),
                    "inputs": {"images": ("uint8" if mode == "int8" else "float32") +
                               f" [1, {size[0]}, {size[1]}, 3], raw RGB"},
                    "outputs": {"logits": ("int8 (dequantise with the output scale and "
                                           "zero point)" if mode == "int8" else "float32") +
                                f" [1, {size[0]}, {size[1]}, classes]"}}
                checks[f"tflite_{mode}"] = _check(os.path.join(tmp, filename), model, samples,
                                                  latency_runs, say)
        if "onnx" in formats:
            say("ONNX")
            try:
                convert_onnx(model, os.path.join(tmp, "model.onnx"))
            except OnnxUnavailableError as e:
                skipped["onnx"] = str(e)
                say("ONNX: skipped (see the note below)")
            else:
                artifacts["onnx"] = {
                    "path": "model.onnx",
                    "inputs": {"images": "float32 [batch, height, width, 3], raw RGB, all "
                                         "dimensions dynamic"},
                    "outputs": {"logits": "float32 [batch, height, width, classes]"}}
                checks["onnx"] = _check(os.path.join(tmp, "model.onnx"), model, samples,
                                        latency_runs, say)
        if "tftrt" in formats:
            available, message = tensorrt_available()
            if not available:
                skipped["tftrt"] = message
                say("TF-TRT: skipped (see the note below)")
            else:
                for precision in TFTRT_PRECISIONS:
                    say(f"TF-TRT {precision}")
                    target = os.path.join(tmp, f"tftrt_{precision.lower()}")
                    convert_tftrt(staging, target, precision, calibration)
                    artifacts[f"tftrt_{precision.lower()}"] = {
                        "path": f"tftrt_{precision.lower()}", "signature": SIGNATURE,
                        "inputs": {INPUT_NAME: "uint8 [batch, height, width, 3]"},
                        "outputs": {"class_map": "int32 (serving_default converted; "
                                                 "no probabilities)"}}
                    checks[f"tftrt_{precision.lower()}"] = _check(target, model, samples,
                                                                  latency_runs, say,
                                                                  device="/GPU:0")
        if "saved_model" in formats:
            for entry in os.listdir(staging):
                shutil.move(os.path.join(staging, entry), os.path.join(tmp, entry))
        shutil.rmtree(staging, ignore_errors=True)
        card = model_card(model, model_path, name, int(version), size, config, summary,
                          artifacts, checks, skipped, command, out_dir)
        card["files"] = _files(tmp)
        with open(os.path.join(tmp, MODEL_CARD), "w", encoding="utf-8") as f:
            json.dump(card, f, indent=2)
            f.write("\n")
        os.chmod(tmp, 0o755)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return card


def _check(path, model, samples, latency_runs, say, device="/CPU:0", label=None):
    runner = ArtifactRunner(path, device=device)
    check = check_artifact(runner, model, samples, latency_runs)
    diff = check["max_abs_diff_probabilities"]
    line = (f"  check {label or os.path.basename(path.rstrip('/'))}: max |diff| of "
            f"probabilities {'n/a (class map only)' if diff is None else format(diff, '.3g')}"
            ", argmax agreement "
            f"{check['argmax_agreement']:.4f} on {check['images']} images at "
            f"{check['size'][0]}x{check['size'][1]}")
    if "latency" in check:
        line += f", batch-1 median {check['latency']['median_ms']:.2f} ms"
    say(line)
    return check


def _next_version(model_dir):
    versions = [int(d) for d in os.listdir(model_dir) if d.isdigit()] if os.path.isdir(
        model_dir) else []
    return max(versions, default=0) + 1


def model_card(model, model_path, name, version, size, config, summary, artifacts, checks,
               skipped, command, out_dir="saved_models"):
    """The model_card.json: what the network is, how it was trained, made and measured."""
    import keras

    import tf_nas_seg
    from tf_nas_seg.benchmark.benchmark_runner import environment
    from tf_nas_seg.networks import count_trainable_params
    from tf_nas_seg.networks.model_macs import count_model_macs

    genotype_path, genotype = _resolve_genotype(config, model_path)
    summary = summary or {}
    dataset = summary.get("dataset") or {}
    env = environment("/CPU:0", 0)
    latency = {key: dict(check["latency"], size=check["size"])
               for key, check in checks.items() if "latency" in check}
    return {
        "name": name, "version": version,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "network": {"keras_name": model.name, "peer": (config or {}).get("peer") or None,
                    "genotype_path": genotype_path, "genotype": genotype,
                    "width_multiplier": (config or {}).get("width_multiplier")},
        "num_classes": int(model.output_shape[-1]),
        "classes": dataset.get("class_names"),
        "training_data": dataset or None,
        "metrics": {"val_miou": (summary.get("final_val") or {}).get("miou"),
                    "best_val_miou": summary.get("best_val_miou"),
                    "pixel_accuracy": (summary.get("final_val") or {}).get("pixel_accuracy"),
                    "per_class_iou": (summary.get("final_val") or {}).get("per_class_iou")},
        "params": count_trainable_params(model),
        "macs": {"size": list(size), "value": count_model_macs(model, *size)},
        "input": "raw RGB 0..255 (normalisation is inside every artefact)",
        "artifacts": artifacts,
        "skipped": skipped,
        "checks_against_keras": checks,
        "latency": {"what": "batch 1, median of the runs after warm-up, host to host",
                    "device": "CPU", "cpu": env["cpu"], "cpu_count": env["cpu_count"],
                    "load_average": env["load_average"], "by_artifact": latency},
        "how_made": {"command": command or " ".join(sys.argv),
                     "source_model": portable_path(model_path),
                     "train_config": config, "tf_nas_seg": tf_nas_seg.__version__,
                     "tensorflow": tf.__version__, "keras": keras.__version__,
                     "wall_time_training_seconds": summary.get("wall_time_seconds")},
        "source_model": portable_path(model_path),
        "serving": {
            "tensorflow_serving": (f"docker run --rm -p 8501:8501 -v "
                                   f"{_shell_dir(os.path.join(out_dir, name))}:/models/{name}"
                                   f" -e MODEL_NAME={name} tensorflow/serving"),
            "rest_predict": (f"POST http://localhost:8501/v1/models/{name}:predict with "
                             '{"instances": [<H x W x 3 uint8 nested list>]}')},
    }
