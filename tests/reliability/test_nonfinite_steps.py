"""--skip_nonfinite_steps: a step whose loss (search: weight loss, expected cost or
architecture loss) is NaN or infinite is skipped, with every variable exactly as before
it, counted, and bounded; without it such a step stops the run (the last checkpoint is
the last good state).

NaNs are injected for real: the loss (training) or a weight (search) is multiplied by
NaN at a chosen call, counted by a variable outside the model, so the step's update
writes NaNs into the weights that the skip must undo.
"""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_nas_seg.train import TrainConfig, TrainError, run_training
from tf_nas_seg.utils.run_state import NonfiniteSteps, VariableSnapshot

TINY = dict(peer="fast_scnn", width_multiplier=0.25, synthetic_images=8,
            synthetic_val_images=4, synthetic_height=32, synthetic_width=64,
            synthetic_classes=4, batch_size=2, iterations=5, checkpoint_every=1,
            eval_every=0, overlays=0, crop_height=32, crop_width=48)


def _checkpoint(directory, number):
    """{key: value} of checkpoint ckpt-`number`, without the step counter and clock."""
    reader = tf.train.load_checkpoint(os.path.join(directory, f"ckpt-{number}"))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if not any(s in k for s in ("elapsed", "save_counter", "global_step"))}


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


class NanAt:
    """Calls counted in a variable; `factor()` is NaN at the calls in `at`, else 1."""

    def __init__(self):
        self.calls = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.at = tf.Variable([-1] * 8, dtype=tf.int64, trainable=False)

    def set(self, *calls, start=0):
        self.calls.assign(start)
        self.at.assign(list(calls) + [-1] * (8 - len(calls)))

    def factor(self):
        n = self.calls.assign_add(1)
        return tf.where(tf.reduce_any(tf.equal(self.at, n)), float("nan"), 1.0)


# The mechanism -----------------------------------------------------------------------
def _state():
    return [keras.Variable([1.0, 2.0]), keras.Variable(7, dtype="int64"),
            keras.Variable([[0.5]], trainable=False)]


def test_a_snapshot_restores_every_variable_bit_for_bit():
    variables = _state()
    snapshot = VariableSnapshot(variables)
    snapshot.save()
    before = [keras.ops.convert_to_numpy(v).copy() for v in variables]
    variables[0].assign([float("nan"), float("inf")])
    variables[1].assign(8)
    variables[2].assign([[-3.0]])
    snapshot.restore()
    for v, b in zip(variables, before):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(v), b)


def test_skips_are_counted_written_resumed_and_bounded(tmp_path):
    variables = _state()
    steps = NonfiniteSteps(str(tmp_path), variables, True, 2, TrainError)
    cause = {"loss": "--lr", "arch_loss": "--arch_lr, or --cost_lambda"}
    steps.before_step()
    assert steps.check(1, {"loss": 0.5}, 0, cause)
    for iteration in (2, 3):
        steps.before_step()
        variables[0].assign([float("nan"), 0.0])
        assert not steps.check(iteration, {"loss": 0.1, "arch_loss": float("inf")}, 1,
                               cause)
        assert keras.ops.convert_to_numpy(variables[0]).tolist() == [1.0, 2.0]
    record = json.loads((tmp_path / "skipped_steps.json").read_text())
    assert record == {"skipped": [{"iteration": 2, "values": {"arch_loss": "inf"}},
                                  {"iteration": 3, "values": {"arch_loss": "inf"}}]}
    assert steps.summary() == {"count": 2, "iterations": [2, 3]}
    assert steps.count(0, 2) == 1 and steps.count(2, 10) == 1
    steps.before_step()
    with pytest.raises(TrainError, match=r"3 consecutive steps \(iterations 2-4\) were "
                                         r"skipped, more than --max_skipped_steps=2.*"
                                         r"arch_loss is nan.*diverged.*last checkpoint "
                                         r"\(iteration 1\) is a good state.*lower --arch_lr"):
        steps.check(4, {"arch_loss": float("nan")}, 1, cause)
    resumed = NonfiniteSteps(str(tmp_path), variables, True, 2, TrainError)
    resumed.resume(2)  # a checkpoint at iteration 2: the skip of 3 will happen again
    assert resumed.summary() == {"count": 1, "iterations": [2]}


def test_without_the_setting_a_nonfinite_step_stops_the_run_and_says_how_to_skip(tmp_path):
    steps = NonfiniteSteps(str(tmp_path), _state(), False, 20, TrainError)
    with pytest.raises(TrainError, match=r"the loss became nan at iteration 5; nothing "
                                         r"was saved after it, so the last checkpoint "
                                         r"\(iteration 4\).*lower --lr.*"
                                         r"--skip_nonfinite_steps"):
        steps.check(5, {"loss": float("nan")}, 4, {"loss": "--lr"})
    assert not (tmp_path / "skipped_steps.json").exists()


# Training ----------------------------------------------------------------------------
@pytest.fixture
def nan_loss(monkeypatch):
    """The training loss times NaN at chosen calls of the loss (real NaN gradients)."""
    from tf_nas_seg.train.ohem import SegmentationLoss

    nan = NanAt()
    # The training step computes its loss with `combine` (of the replicas' terms).
    original = SegmentationLoss.combine

    def poisoned(self, *args, **kwargs):
        return original(self, *args, **kwargs) * nan.factor()

    monkeypatch.setattr(SegmentationLoss, "combine", poisoned)
    return nan


def test_training_skips_a_nan_step_with_the_variables_unchanged(tmp_path, nan_loss):
    run = tmp_path / "run"
    nan_loss.set(3)
    first = run_training(TrainConfig(run_dir=str(run), skip_nonfinite_steps=True,
                                     stop_after_iterations=3, **TINY))
    assert first["status"] == "interrupted" and first["iterations_done"] == 3
    assert first["skipped_nonfinite_steps"] == {"count": 1, "iterations": [3]}
    checkpoints = str(run / "checkpoints")
    _assert_same(_checkpoint(checkpoints, 2), _checkpoint(checkpoints, 3))
    keras.backend.clear_session()
    summary = run_training(TrainConfig(run_dir=str(run), skip_nonfinite_steps=True, **TINY))
    assert summary["status"] == "completed" and summary["iterations"] == 5
    assert summary["skipped_nonfinite_steps"] == {"count": 1, "iterations": [3]}
    history = json.loads((run / "history.json").read_text())
    assert sum(h["skipped_steps"] for h in history) == 1
    assert np.isfinite(history[-1]["train_loss"])
    state = _checkpoint(checkpoints, 5)
    assert all(np.all(np.isfinite(v)) for v in state.values()
               if isinstance(v, np.ndarray) and v.dtype.kind == "f")


@pytest.mark.slow  # three trainings (~40 s on a busy 2-core machine)
def test_a_run_stopped_by_a_nan_resumes_with_skip_nonfinite_steps(tmp_path, nan_loss):
    run = tmp_path / "run"
    nan_loss.set(3)
    with pytest.raises(TrainError, match=r"loss became nan at iteration 3; .*last "
                                         r"checkpoint \(iteration 2\).*lower --lr.*"
                                         "--skip_nonfinite_steps"):
        run_training(TrainConfig(run_dir=str(run), **TINY))
    nan_loss.set(1)  # the resumed run's first step is iteration 3 again
    keras.backend.clear_session()
    summary = run_training(TrainConfig(run_dir=str(run), skip_nonfinite_steps=True, **TINY))
    assert summary["status"] == "completed"
    assert summary["skipped_nonfinite_steps"] == {"count": 1, "iterations": [3]}


def test_training_stops_after_too_many_skipped_steps_in_a_row(tmp_path, nan_loss):
    nan_loss.set(2, 3, 4)
    with pytest.raises(TrainError, match=r"3 consecutive steps \(iterations 2-4\) were "
                                         r"skipped, more than --max_skipped_steps=2.*"
                                         r"Every skipped step was undone, so the last "
                                         r"checkpoint \(iteration 3\) is a good state.*"
                                         r"lower --lr"):
        run_training(TrainConfig(run_dir=str(tmp_path / "run"), skip_nonfinite_steps=True,
                                 max_skipped_steps=2, **TINY))
    record = json.loads((tmp_path / "run" / "skipped_steps.json").read_text())
    assert [e["iteration"] for e in record["skipped"]] == [2, 3, 4]


# Search ------------------------------------------------------------------------------
@pytest.mark.slow  # a CAS search traced twice (~15 s idle); training keeps the fast skip check
def test_a_search_skips_a_nan_step_with_every_variable_unchanged(tmp_path, monkeypatch):
    """A NaN written into a weight by the second weight update (the last of the first
    epoch): the step is skipped and weights, logits, optimizer slots and the epoch's
    metrics are as before it (training checks the batch-norm moving statistics)."""
    from tests.search.test_search_runner import _config
    from tf_nas_seg.search.bilevel_search_model import BilevelSearchModel
    from tf_nas_seg.search.search_runner import SearchRunner

    nan = NanAt()
    nan.set(2)
    original = BilevelSearchModel.weight_step

    def diverging(self, weight_batch):
        loss = original(self, weight_batch)
        factor = nan.factor()
        weight = self.weight_variables[0]
        weight.assign(weight * factor)  # the weights themselves become NaN
        return loss * factor

    monkeypatch.setattr(BilevelSearchModel, "weight_step", diverging)
    runner = SearchRunner(_config(tmp_path, "skip", skip_nonfinite_steps=True,
                                  stop_after_iterations=2))
    summary = runner.run()
    assert summary["status"] == "interrupted" and summary["iterations_done"] == 2
    assert summary["skipped_nonfinite_steps"] == {"count": 1, "iterations": [2]}
    run = tmp_path / "skip"
    _assert_same(_checkpoint(run / "checkpoints", 1), _checkpoint(run / "checkpoints", 2))
    history = json.loads((run / "history.json").read_text())
    assert [h["skipped_steps"] for h in history] == [1]
    assert np.isfinite(history[0]["weight_loss"]) and np.isfinite(history[0]["arch_loss"])
    assert runner.step_functions[True].experimental_get_tracing_count() == 1
