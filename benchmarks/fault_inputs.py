"""Every bad input of issue 15, tried once: the error each gets (for fault_injection.py).

Each case builds its bad input in a scratch folder, calls what a command calls with it
(the data loaders, the genotype and table readers, the artifact loader, the serving
signature, the run directory lock, the atomic writer, the trainer) and records the first
line of the error, and whether it is the expected kind with the expected words.
"""

import copy
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _error_line(error, words=""):
    """The line of an error's message that holds `words`, else its first line."""
    lines = str(getattr(error, "message", None) or error).strip().splitlines() or [""]
    return next((line for line in lines if words and words in line), lines[0])[:400]


def _camvid(root, count=4, size=(12, 16)):
    """A tiny SegNet-layout CamVid train split (raw ids 0-11)."""
    from tests.data.conftest import random_image, write_png

    rng = np.random.default_rng(0)
    lines = []
    for i in range(count):
        stem = f"0016E5_{i:06d}"
        write_png(root / "train" / f"{stem}.png", random_image(rng, *size))
        write_png(root / "trainannot" / f"{stem}.png", rng.integers(0, 12, size))
        lines.append(f"train/{stem}.png trainannot/{stem}.png")
    (root / "train.txt").write_text("\n".join(lines) + "\n")
    return root


def _cityscapes(root, layout_ok=True):
    from tests.data.conftest import random_image, write_png

    rng = np.random.default_rng(0)
    for i in range(2):
        stem = f"aachen_{i:06d}_000019"
        city = root / "leftImg8bit" / "train" / ("aachen" if layout_ok else "")
        write_png(city / f"{stem}_leftImg8bit.png", random_image(rng, 8, 16))
        label = root / "gtFine" / "train" / "aachen" / f"{stem}_gtFine_labelIds.png"
        if i == 0:
            write_png(label, np.full((8, 16), 7, np.uint8))
    return root


def _data_cases(work):
    from tests.data.conftest import write_png
    from tests.data.test_data_errors import _corrupt_pixel_data
    from tf_nas_seg.data import load_camvid, load_cityscapes

    def camvid(name, damage):
        root = _camvid(work / name)
        damage(root)
        return lambda: load_camvid(root, "train")

    def truncate(path):
        path.write_bytes(path.read_bytes()[:-20])

    cases = [
        ("corrupt image (not an image)", camvid("garbage", lambda r: (
            r / "train/0016E5_000000.png").write_bytes(b"not an image")),
         "is not a readable image"),
        ("truncated image", camvid("truncated", lambda r: truncate(
            r / "train/0016E5_000001.png")), "is truncated"),
        ("corrupt pixel data in a label", camvid("pixels", lambda r: _corrupt_pixel_data(
            r / "trainannot/0016E5_000002.png")), "cannot decode"),
        ("label of the wrong size", camvid("size", lambda r: write_png(
            r / "trainannot/0016E5_000003.png", np.zeros((12, 15), np.uint8))),
         "a label map must have its image's size"),
        ("label values outside the classes and the ignore label", camvid(
            "values", lambda r: write_png(r / "trainannot/0016E5_000000.png",
                                          np.full((12, 16), 40, np.uint8))),
         "has value 40"),
        ("empty split", camvid("empty", lambda r: (r / "train.txt").write_text("\n")),
         "lists no examples"),
        ("mismatched image/label lists (a line without its label)", camvid(
            "mismatch", lambda r: (r / "train.txt").write_text(
                "train/0016E5_000000.png\n")), "expected 'image label'"),
        ("list naming a missing image", camvid("missing", lambda r: (
            r / "train/0016E5_000001.png").unlink()), "does not exist"),
    ]
    flat = _cityscapes(work / "cityscapes_flat", layout_ok=False)
    cases.append(("Cityscapes folder with the wrong layout (no city folders)",
                  lambda: load_cityscapes(flat, "train"),
                  "images must be in one folder per city"))
    nolabel = _cityscapes(work / "cityscapes_nolabel")
    cases.append(("Cityscapes image without its label",
                  lambda: load_cityscapes(nolabel, "train"), "has no label file"))

    # all of the camvid damage at once, skipped and counted
    every = _camvid(work / "every", count=10)
    (every / "train/0016E5_000000.png").write_bytes(b"not an image")
    truncate(every / "train/0016E5_000001.png")
    _corrupt_pixel_data(every / "trainannot/0016E5_000002.png")
    write_png(every / "trainannot/0016E5_000003.png", np.zeros((12, 15), np.uint8))
    write_png(every / "trainannot/0016E5_000004.png", np.full((12, 16), 40, np.uint8))
    (every / "train/0016E5_000005.png").unlink()
    lines = (every / "train.txt").read_text().splitlines()
    lines[6] = lines[6].split()[0]
    (every / "train.txt").write_text("\n".join(lines) + "\n")

    def skipped():
        source = load_camvid(every, "train", skip_bad=True)
        return f"--skip_bad_examples: {len(source.skipped)} of 10 skipped, {len(source)} kept"

    cases.append(("the 7 kinds of bad CamVid example above, with --skip_bad_examples",
                  skipped, "7 of 10 skipped, 3 kept"))
    return cases


def _genotype_cases():
    from tests.networks.genotypes import covering_genotype
    from tf_nas_seg.networks.builder import check_genotype
    from tf_nas_seg.space.genotype import Genotype

    def parse(doc):
        return lambda: check_genotype(Genotype.from_json(doc))

    base = covering_genotype().to_json()
    unknown = copy.deepcopy(base)
    unknown["cells"]["normal"]["nodes"][0][0][0] = "rm_rf_slash"
    fewer = copy.deepcopy(base)
    fewer["cells"]["reduce"]["nodes"].pop()  # its concat still names the lost node
    huge = copy.deepcopy(base)
    huge["cells"]["normal"]["nodes"][0][0][1] = 10 ** 40
    deep = []
    for _ in range(100_000):
        deep = [deep]
    nested = copy.deepcopy(base)
    nested["cells"]["normal"]["nodes"] = deep
    return [("genotype with an unknown op", parse(unknown), "rm_rf_slash"),
            ("genotype with the wrong node count (a node missing)", parse(fewer),
             "state indices"),
            ("genotype with a huge input index", parse(huge), "input"),
            ("genotype nested 100,000 lists deep", parse(nested), "nodes")]


def _table_cases(work):
    from tests.reliability.test_foreign_table import _config, _write_table
    from tf_nas_seg.search.latency_space import search_table

    cases = []
    for name, changes, words in (
            ("latency table for another device", {"device": "Imaginary NPU 9000"},
             "another device"),
            ("latency table for another TensorFlow version", {"tensorflow": "2.0.0"},
             "another TensorFlow version"),
            ("latency table for another resolution", {"space.height": 360},
             "another resolution"),
            ("latency table for another search space", {"space.num_classes": 11},
             "another search space")):
        path = work / f"{name.split()[-1]}.json"
        config = _config(path)
        _write_table(path, config, **changes)
        cases.append((name, lambda config=config: search_table(config, 4, 32, 32), words))
    return cases


def _flagfile_case(work):
    path = work / "typo.cfg"
    path.write_text("--peer=fast_scnn\n--learning_rate=0.1\n")

    def run():
        done = subprocess.run([sys.executable, str(ROOT / "bin" / "train"),
                               f"--flagfile={path}", f"--run_dir={work / 'flag_run'}"],
                              capture_output=True, text=True, timeout=300, check=False,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        if done.returncode == 0:
            return "accepted"
        lines = done.stderr.strip().splitlines() or [""]
        line = next((x for x in lines if x.startswith(("FATAL", "error:"))), lines[-1])
        raise RuntimeError(f"exit {done.returncode}: {line}")

    return [("flagfile with an unknown flag (bin/train)", run, "learning_rate")]


def _artifact_cases(work):
    import keras
    import tensorflow as tf

    from tf_nas_seg.data import make_street_scenes
    from tf_nas_seg.export import export_model
    from tf_nas_seg.export.artifact_runner import load_keras_model
    from tf_nas_seg.networks import build_network

    inputs = keras.Input((8, 8, 3))
    path = work / "lambda.keras"
    keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2.0)(inputs)).save(path)
    cases = [(".keras file with a Lambda layer (safe mode)", lambda: load_keras_model(path),
              "Lambda")]
    # A tiny network exported now, as bin/export does.
    keras.utils.set_random_seed(0)
    build_network(None, 4, peer="fast_scnn", width_multiplier=0.25).save(work / "tiny.keras")
    scenes = [make_street_scenes(num_images=n, height=32, width=48, num_classes=4, seed=1,
                                 split=split) for n, split in ((4, "train"), (2, "val"))]
    export_model(work / "tiny.keras", "tiny", 1, formats=("saved_model",),
                 out_dir=work / "saved_models", train_source=scenes[0],
                 sample_source=scenes[1], check_images=1, latency_runs=1)
    signature = tf.saved_model.load(str(work / "saved_models" / "tiny" / "1")
                                    ).signatures["serving_default"]
    # Every shipped SavedModel (the newest version of each) refuses a wrong rank and
    # a wrong channel count with the signature's message.
    for model_dir in sorted((ROOT / "saved_models").glob("*")):
        # a version is a numbered folder holding a SavedModel (an empty one left behind
        # by a removed version is not)
        versions = sorted((v for v in model_dir.glob("*")
                           if v.name.isdigit() and (v / "saved_model.pb").is_file()),
                          key=lambda v: int(v.name))
        if not versions:
            continue
        shipped = tf.saved_model.load(str(versions[-1])).signatures["serving_default"]
        label = f"shipped saved_models/{model_dir.name}/{versions[-1].name}"
        for what, shape in (("4 channels", (1, 32, 48, 4)), ("no batch axis", (32, 48, 3))):
            cases.append((f"{label}, input with {what}",
                          lambda shipped=shipped, shape=shape: shipped(
                              images=tf.constant(np.zeros(shape, np.uint8))),
                          "[batch, height, width, 3]"))
    for name, value, words in (
            ("SavedModel input of the wrong dtype (float32)",
             np.zeros((1, 32, 48, 3), np.float32), "uint8"),
            ("SavedModel input of the wrong rank (no batch)",
             np.zeros((32, 48, 3), np.uint8), "[batch, height, width, 3]"),
            ("SavedModel input with 4 channels", np.zeros((1, 32, 48, 4), np.uint8),
             "[batch, height, width, 3]")):
        cases.append((name, lambda value=value: signature(images=tf.constant(value)), words))
    return cases


def _run_cases(work):
    from tf_nas_seg.space.genotype import write_json_atomic
    from tf_nas_seg.train import TrainConfig, run_training
    from tf_nas_seg.utils import atomic
    from tf_nas_seg.utils.run_state import RunLock

    tiny = dict(peer="fast_scnn", width_multiplier=0.25, synthetic_images=4,
                synthetic_val_images=2, synthetic_height=32, synthetic_width=48,
                synthetic_classes=3, batch_size=2, iterations=6, eval_every=0, overlays=0)

    def second_process():
        with RunLock(work / "busy", "bin/train", RuntimeError):
            run_training(TrainConfig(run_dir=str(work / "busy"), **tiny))

    def full_disk():
        real = atomic.tempfile.mkstemp

        def to_dev_full(**kwargs):
            fd, path = real(**kwargs)
            os.close(fd)
            os.unlink(path)
            os.symlink("/dev/full", path)
            return os.open(path, os.O_WRONLY), path

        atomic.tempfile.mkstemp = to_dev_full
        try:
            write_json_atomic(work / "history.json", {"padding": "x" * 100_000})
        finally:
            atomic.tempfile.mkstemp = real

    return [
        ("a second process on a run directory in use", second_process, "is in use by"),
        ("a full disk (writes go to /dev/full)", full_disk, "the disk is full"),
        ("less free disk than --min_free_mib", lambda: run_training(TrainConfig(
            run_dir=str(work / "free"), min_free_mib=10 ** 9, **tiny)), "MiB free"),
        ("a NaN loss at iteration 3 (injected)", lambda: _nan_loss(work, tiny),
         "became nan at iteration 3"),
    ]


def _nan_loss(work, tiny):
    """Trains with the loss multiplied by NaN at its third call."""
    from tests.reliability.test_nonfinite_steps import NanAt
    from tf_nas_seg.train import TrainConfig, run_training
    from tf_nas_seg.train.ohem import SegmentationLoss

    nan = NanAt()
    nan.set(3)
    # `combine` is the one place every training step's loss passes (on any number of
    # replicas), so poisoning it poisons the step's loss.
    original = SegmentationLoss.combine
    SegmentationLoss.combine = lambda self, *a, **k: original(self, *a, **k) * nan.factor()
    try:
        run_training(TrainConfig(run_dir=str(work / "nan"), checkpoint_every=2, **tiny))
    finally:
        SegmentationLoss.combine = original


def try_all(work, log=print):
    """Tries every case; returns [{"input", "error", "expected", "refused"}].

    "refused" is True when the input got a user error (a `UserError`; for the serving
    signature TensorFlow's InvalidArgumentError; for a command, its one-line error and
    a non-zero exit) whose line holds the expected words, or, for the skipped examples,
    the expected count. Any other exception (a crash) is not.
    """
    import tensorflow as tf

    from tf_nas_seg.errors import UserError

    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    cases = (_data_cases(work) + _genotype_cases() + _table_cases(work)
             + _flagfile_case(work) + _artifact_cases(work) + _run_cases(work))
    clear = (UserError, tf.errors.InvalidArgumentError, RuntimeError)
    results = []
    for name, call, words in cases:
        try:
            outcome = call()
            error = outcome if isinstance(outcome, str) else "accepted"
            refused = isinstance(outcome, str) and words in outcome
        except clear as e:
            error, refused = f"{type(e).__name__}: {_error_line(e, words)}", words in str(e)
        except Exception as e:  # noqa: BLE001 (a crash, reported as such)
            error, refused = f"{type(e).__name__} (a crash): {_error_line(e)}", False
        results.append({"input": name, "error": error, "expected": words,
                        "refused": refused})
        log(f"bad input: {name}: {error[:200]}")
    return results
