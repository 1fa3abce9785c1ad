"""bin/train's engine: learns, resumes exactly, writes its run directory, refuses bad input."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.networks.genotypes import covering_genotype
from tf_nas_seg.networks import CASLayout
from tf_nas_seg.space.genotype import GenotypeError
from tf_nas_seg.train import TrainConfig, TrainError, run_training
from tf_nas_seg.train.trainer import Trainer

# Eight bundled scenes, trained and scored on the same images: the net must memorise.
OVERFIT = dict(synthetic_images=8, synthetic_val_images=8, val_split="train",
               synthetic_classes=6, scale_min=1.0, scale_max=1.0, flip=False, batch_size=4,
               iterations=300, lr=0.2, loss="ohem", eval_every=150, checkpoint_every=1000,
               overlays=2, deterministic=False)
TINY = dict(peer="fast_scnn", width_multiplier=0.25, synthetic_images=8,
            synthetic_val_images=4, synthetic_height=32, synthetic_width=64,
            synthetic_classes=4, batch_size=2, iterations=6, checkpoint_every=1,
            eval_every=3, overlays=0, crop_height=32, crop_width=48)


@pytest.fixture(scope="module")
def overfit(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    layout = CASLayout(layout="NR", channels=8, stem_channels=16, steps=6, low_level_cell=0,
                       ms_channels=8, ms_steps=5)
    covering_genotype(layout=layout).save(root / "genotype.json")
    config = TrainConfig(genotype=str(root / "genotype.json"), run_dir=str(root / "run"),
                         **OVERFIT)
    trainer = Trainer(config)
    return root / "run", trainer.run(), trainer


def test_training_overfits_a_few_bundled_images(overfit):
    _, summary, _ = overfit
    assert summary["status"] == "completed" and summary["iterations"] == 300
    assert summary["final_val"]["miou"] >= 0.9
    assert summary["best_val_miou"] >= summary["final_val"]["miou"] - 1e-9


def test_run_directory_holds_models_logs_plots_and_summary(overfit):
    run, summary, _ = overfit
    for name in ("config.json", "model.keras", "best.keras", "history.json",
                 "train_summary.json", "plots/training.png", "plots/prediction_000.png",
                 "plots/prediction_001.png"):
        assert (run / name).exists(), name
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    history = json.loads((run / "history.json").read_text())
    assert [h["step"] for h in history] == [150, 300]
    assert summary["params"] > 0 and summary["macs"]["value"] > 0
    # The final model file reproduces the reported score.
    from tf_nas_seg.evaluation import evaluate_source, load_predictor
    from tf_nas_seg.train.trainer import load_sources

    config = TrainConfig(**json.loads((run / "config.json").read_text()))
    _, val = load_sources(config)
    scores = evaluate_source(load_predictor(run / "model.keras"), val, progress=False)
    assert scores["miou"] == pytest.approx(summary["final_val"]["miou"], abs=1e-6)


def _state(run_dir):
    reader = tf.train.load_checkpoint(os.path.join(run_dir, "checkpoints"))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if "elapsed" not in k and "save_counter" not in k}


def test_step_and_evaluation_are_traced_once_for_the_whole_run(overfit):
    # 300 iterations, 3 evaluations (every 150 and the final model) of batches of 4:
    # one trace each, not one per evaluation.
    _, _, trainer = overfit
    assert trainer.train_step_function.experimental_get_tracing_count() == 1
    assert trainer.predictor._fn.experimental_get_tracing_count() == 1


@pytest.mark.slow  # two trainings (~14 s idle); test_kill_resume keeps a fast exact-resume check
def test_resume_after_interruption_continues_identically(tmp_path):
    straight = run_training(TrainConfig(run_dir=str(tmp_path / "a"), **TINY))
    first = run_training(TrainConfig(run_dir=str(tmp_path / "b"), stop_after_iterations=4,
                                     **TINY))
    assert first["status"] == "interrupted" and first["iterations_done"] == 4
    keras.backend.clear_session()
    resumed = run_training(TrainConfig(run_dir=str(tmp_path / "b"), **TINY))
    assert resumed["status"] == "completed"
    a, b = _state(tmp_path / "a"), _state(tmp_path / "b")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert resumed["best_val_miou"] == straight["best_val_miou"]
    hist_a = json.loads((tmp_path / "a" / "history.json").read_text())
    hist_b = json.loads((tmp_path / "b" / "history.json").read_text())
    assert hist_a == hist_b


def test_bad_settings_are_refused_with_the_fix(tmp_path):
    with pytest.raises(TrainError, match="exactly one of --genotype"):
        run_training(TrainConfig(run_dir=str(tmp_path / "x"), genotype="g.json",
                                 peer="fast_scnn"))
    with pytest.raises(TrainError, match="--run_dir is required"):
        TrainConfig(**{**TINY, "run_dir": ""}) and run_training(TrainConfig(**TINY))
    with pytest.raises(ValueError, match="crop_width"):
        TrainConfig(crop_height=32)
    with pytest.raises(GenotypeError, match="does not exist"):
        run_training(TrainConfig(run_dir=str(tmp_path / "y"),
                                 genotype=str(tmp_path / "missing.json")))
    run_training(TrainConfig(run_dir=str(tmp_path / "z"), **{**TINY, "iterations": 1}))
    with pytest.raises(TrainError, match="other settings .*lr"):
        run_training(TrainConfig(run_dir=str(tmp_path / "z"), **{**TINY, "lr": 0.5}))


def test_mixed_precision_trains_with_loss_scaling(tmp_path):
    summary = run_training(TrainConfig(run_dir=str(tmp_path / "mp"), precision="mixed_float16",
                                       **{**TINY, "iterations": 2, "eval_every": 0}))
    assert summary["status"] == "completed" and summary["environment"]["precision"] == (
        "mixed_float16")
    model = keras.saving.load_model(summary["model"], compile=False)
    assert model.get_layer("downsample_conv").compute_dtype == "float16"
    assert keras.mixed_precision.dtype_policy().name == "float32"  # restored for others


def test_a_second_training_on_a_run_directory_in_use_is_refused(tmp_path):
    from tf_nas_seg.utils.run_state import RunLock

    with RunLock(tmp_path / "run", "bin/train", RuntimeError):
        with pytest.raises(TrainError, match="run is in use by bin/train"):
            run_training(TrainConfig(run_dir=str(tmp_path / "run"), **TINY))
    assert not (tmp_path / "run" / "config.json").exists()


def test_a_nan_loss_stops_training_and_names_the_last_good_checkpoint(tmp_path,
                                                                     monkeypatch):
    from tests.reliability.test_nonfinite_steps import NanAt
    from tf_nas_seg.train.ohem import SegmentationLoss

    nan = NanAt()  # the loss (and so the gradients) is NaN at the third iteration
    nan.set(3)
    original = SegmentationLoss.combine  # what the training step computes its loss with
    monkeypatch.setattr(SegmentationLoss, "combine",
                        lambda self, *a, **k: original(self, *a, **k) * nan.factor())
    with pytest.raises(TrainError, match=r"loss became .* at iteration 3; .*last "
                                         r"checkpoint \(iteration 2\).*lower --lr"):
        run_training(TrainConfig(run_dir=str(tmp_path / "run"),
                                 **{**TINY, "checkpoint_every": 2}))
