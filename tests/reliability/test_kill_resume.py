"""Killed at any moment, a rerun resumes and ends where an uninterrupted run ends.

SIGKILL cannot be caught: what it leaves is what was on disk at that moment. The fast
tests take that state directly (a copy of the run directory made at a chosen moment of
an uninterrupted run, in-process) and resume from it; the slow ones kill real
`bin/search`, `bin/train` and `bin/latency_table` processes at random points after
their first checkpoint (tests/reliability/kill_harness.py) and rerun the same command.

Search and training resume exactly (bit for bit, same seed, same machine); a latency
table's entries are timings, so there the resumed table must hold the same keys and
settings as an uninterrupted build and every entry saved before the kill, unchanged.
"""

import json
import random
import shutil

import keras
import numpy as np
import pytest

from tests.reliability import kill_harness as harness
from tf_nas_seg.train import TrainConfig, run_training
from tf_nas_seg.utils.run_state import VariableCheckpoint


# Optional checkpoint state ------------------------------------------------------------
def test_state_added_later_is_saved_and_a_checkpoint_without_it_still_resumes(tmp_path,
                                                                              caplog):
    weights, counter = keras.Variable([1.0, 2.0]), keras.Variable(3.0)
    old = VariableCheckpoint([weights], str(tmp_path), error_cls=RuntimeError)
    old.save(1)  # written before the optional state existed
    weights.assign([5.0, 6.0])
    new = VariableCheckpoint([weights], str(tmp_path), error_cls=RuntimeError,
                             optional={"metric000": counter})
    counter.assign(9.0)
    assert new.restore()
    assert keras.ops.convert_to_numpy(weights).tolist() == [1.0, 2.0]
    assert float(counter) == 9.0  # not in that checkpoint: left as it was
    assert "holds no metric000" in caplog.text
    new.save(2)
    counter.assign(0.0)
    assert new.restore() and float(counter) == 9.0  # saved with ckpt-2, restored


# The disk state a kill leaves, resumed in-process (fast) ------------------------------
TINY = dict(peer="fast_scnn", width_multiplier=0.25, synthetic_images=8,
            synthetic_val_images=2, synthetic_height=32, synthetic_width=48,
            synthetic_classes=3, batch_size=2, iterations=6, checkpoint_every=2,
            eval_every=3, overlays=0, seed=5)


def test_training_killed_between_a_checkpoint_and_the_next_resumes_exactly(tmp_path,
                                                                          monkeypatch):
    """Copies of the run directory made during an uninterrupted run (the disk as a kill
    would leave it: after the evaluation at 3 had written best.keras and history.json
    but before its checkpoint, and before the final model's write) each resume to the
    same end."""
    from tf_nas_seg.train import trainer

    copies = {}
    real_history = trainer.Trainer._write_history

    def history(self):
        real_history(self)
        if self.history and self.history[-1]["step"] == 3 and "after_eval_3" not in copies:
            copies["after_eval_3"] = shutil.copytree(tmp_path / "a", tmp_path / "k2")

    real_model = trainer.save_model_atomic

    def save_model(model, path):
        if path.endswith("model.keras") and "final_model" not in copies:
            copies["final_model"] = shutil.copytree(tmp_path / "a", tmp_path / "k3")
        return real_model(model, path)

    monkeypatch.setattr(trainer.Trainer, "_write_history", history)
    monkeypatch.setattr(trainer, "save_model_atomic", save_model)
    reference = run_training(TrainConfig(run_dir=str(tmp_path / "a"), **TINY))
    monkeypatch.undo()
    assert set(copies) == {"after_eval_3", "final_model"}
    # the eval at 3 ran after checkpoint 2 and before checkpoint 4: its files are there,
    # its checkpoint not yet
    assert harness.checkpoint_step(copies["after_eval_3"]) == 2
    assert json.loads((copies["after_eval_3"] / "history.json").read_text())[-1]["step"] == 3
    for name, copy in copies.items():
        keras.backend.clear_session()
        resumed = run_training(TrainConfig(run_dir=str(copy), **TINY))
        assert resumed["status"] == "completed", name
        assert harness.compare_runs("train", tmp_path / "a", copy) == [], name
        assert resumed["best_val_miou"] == reference["best_val_miou"], name


# Real processes, killed at random points (slow) ---------------------------------------
def _kill_and_resume(tmp_path, tool, args, kind, seed, out_flag="--run_dir"):
    """Runs `bin/tool args` uninterrupted and killed-then-rerun; returns the comparison."""
    rng = random.Random(seed)
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    done = harness.run(harness.command(tool, *args, f"{out_flag}={reference}"))
    assert done.returncode == 0, done.stderr[-3000:]
    argv = harness.command(tool, *args, f"{out_flag}={killed}")
    if kind == "table":
        chunk = 1
        ready = lambda _log: len(harness.table_entries(killed)) >= chunk  # noqa: E731
    else:
        first = rng.randint(1, 4)
        ready = lambda _log: harness.checkpoint_step(killed) >= first  # noqa: E731
    delay = rng.uniform(0.0, 0.5)
    result = harness.kill_at(argv, ready, delay)
    assert result["killed"], f"finished before the kill point (seed {seed}): {result}"
    at_kill = harness.table_entries(killed) if kind == "table" else None
    again = harness.run(argv)
    assert again.returncode == 0, again.stderr[-3000:]
    problems = harness.compare_runs(kind, reference, killed)
    if kind == "table":
        problems += [f"lost {k}" for k in harness.lost_entries(
            at_kill, harness.table_entries(killed))]
    return problems, result


@pytest.mark.slow  # three bin/search processes (~2-3 min on 2 busy cores)
@pytest.mark.parametrize("seed", [1])
def test_a_search_killed_at_a_random_point_resumes_to_the_same_result(tmp_path, seed):
    problems, result = _kill_and_resume(tmp_path, "search", harness.SEARCH_ARGS, "search",
                                        seed)
    assert problems == [], (problems, result)


@pytest.mark.slow  # three bin/train processes (~1.5 min)
@pytest.mark.parametrize("seed", [2])
def test_a_training_killed_at_a_random_point_resumes_to_the_same_result(tmp_path, seed):
    problems, result = _kill_and_resume(tmp_path, "train", harness.TRAIN_ARGS, "train",
                                        seed)
    assert problems == [], (problems, result)


@pytest.mark.slow  # three bin/latency_table processes (~1.5 min)
@pytest.mark.parametrize("seed", [3])
def test_a_table_build_killed_after_a_chunk_loses_nothing(tmp_path, seed):
    problems, result = _kill_and_resume(tmp_path, "latency_table", harness.TABLE_ARGS,
                                        "table", seed, out_flag="--table")
    assert problems == [], (problems, result)


def test_the_comparison_sees_a_difference(tmp_path):
    """compare_runs is not vacuous: one changed weight, one changed history value."""
    import tensorflow as tf

    for name, value in (("a", 1.0), ("b", 1.5)):
        run = tmp_path / name
        v = tf.Variable([value, 2.0])
        tf.train.CheckpointManager(tf.train.Checkpoint(v=v), str(run / "checkpoints"),
                                   max_to_keep=1).save()
        (run / "history.json").write_text(json.dumps([{"step": 1, "train_loss": value,
                                                       "wall_time_seconds": value}]))
        (run / "train_summary.json").write_text(json.dumps({"best_val_miou": 0.5,
                                                           "model": str(run)}))
    problems = harness.compare_runs("train", tmp_path / "a", tmp_path / "b")
    assert any("checkpoint v/" in p for p in problems)
    assert "history.json differs ([0].train_loss: 1.0 vs 1.5)" in problems
    assert "train_summary.json differs" not in problems  # paths are not results
    np.testing.assert_equal(harness.lost_entries({"x": 1.0}, {"x": 1.0}), [])
    assert harness.lost_entries({"x": 1.0, "y": 2.0}, {"x": 1.5}) == ["x", "y"]


@pytest.mark.slow  # two tiny searches in-process (~1 min on 2 busy cores)
def test_a_search_killed_as_an_epoch_ends_resumes_with_that_epochs_outputs(tmp_path,
                                                                          monkeypatch):
    """The disk as a kill leaves it when an epoch's last step is done and its outputs
    (history entry, genotype, plots) are not yet written. The in-loop checkpoint used to
    be saved at that step, before the outputs: the resumed run then started at the next
    epoch and the epoch's history entry was lost for good."""
    from tf_nas_seg.search.search_config import SearchConfig
    from tf_nas_seg.search.search_runner import SearchRunner, run_search

    tiny = dict(synthetic_images=16, synthetic_height=32, synthetic_width=32,
                synthetic_classes=4, layout="NR", channels=4, stem_channels=8, steps=1,
                low_level_cell=0, batch_size=4, iterations=4, cost="params",
                cost_lambda=0.1, arch_lr=0.02, checkpoint_every=1, seed=5)
    real = SearchRunner._write_epoch_outputs
    copies = []

    def outputs(self, epoch, metrics, writer):
        if epoch == 0 and not copies:
            copies.append(shutil.copytree(tmp_path / "a", tmp_path / "killed"))
        return real(self, epoch, metrics, writer)

    monkeypatch.setattr(SearchRunner, "_write_epoch_outputs", outputs)
    run_search(SearchConfig(run_dir=str(tmp_path / "a"), **tiny))
    monkeypatch.undo()
    assert harness.checkpoint_step(copies[0]) == 1  # not 2: epoch 0 is redone
    keras.backend.clear_session()
    resumed = run_search(SearchConfig(run_dir=str(copies[0]), **tiny))
    assert resumed["epochs"] == 2
    assert harness.compare_runs("search", tmp_path / "a", copies[0]) == []


@pytest.mark.slow  # three tiny AutoRTNet searches in-process (minutes: the step's trace)
def test_an_autortnet_search_stopped_mid_epoch_resumes_exactly(tmp_path):
    """AutoRTNet's extra state (Gumbel sampling, the exit warm-up, the sampled-depth
    record of the epoch) resumes mid-epoch to the uninterrupted run's results."""
    from tests.search.test_autortnet_search import TINY as AUTORTNET
    from tf_nas_seg.search.search_config import SearchConfig
    from tf_nas_seg.search.search_runner import run_search

    run_search(SearchConfig(**AUTORTNET, run_dir=str(tmp_path / "a")))
    keras.backend.clear_session()
    stopped = run_search(SearchConfig(**AUTORTNET, run_dir=str(tmp_path / "b"),
                                      stop_after_iterations=3))
    assert stopped["status"] == "interrupted"
    keras.backend.clear_session()
    run_search(SearchConfig(**AUTORTNET, run_dir=str(tmp_path / "b")))
    assert harness.compare_runs("search", tmp_path / "a", tmp_path / "b") == []
