"""A full disk, a quota, a read-only file system or an unwritable run directory: every
long command refuses to start, and every write fails with a DiskError naming the file
and the cause, the previous file intact and no half-written file left.

Tests may run as root, where chmod does not stop writes, so the faults are injected by
patching the writers (and, for a real ENOSPC from the kernel, by writing to /dev/full).
"""

import errno
import json
import os
import re

import keras
import pytest
import tensorflow as tf

from tf_nas_seg.errors import DiskError, UserError
from tf_nas_seg.space.genotype import write_json_atomic
from tf_nas_seg.utils import atomic
from tf_nas_seg.utils.atomic import atomic_output, check_disk
from tf_nas_seg.utils.run_state import RunLock, VariableCheckpoint


def _leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".tmp_"))


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_real_enospc_leaves_the_previous_file_and_no_temp_file(tmp_path, monkeypatch):
    """The temp file is a link to /dev/full: the kernel itself says ENOSPC."""
    target = tmp_path / "history.json"
    write_json_atomic(target, {"epoch": 1})
    real_mkstemp = atomic.tempfile.mkstemp

    def full_disk_mkstemp(**kwargs):
        fd, path = real_mkstemp(**kwargs)
        os.close(fd)
        os.unlink(path)
        os.symlink("/dev/full", path)
        return os.open(path, os.O_WRONLY), path

    monkeypatch.setattr(atomic.tempfile, "mkstemp", full_disk_mkstemp)
    with pytest.raises(DiskError) as error:
        write_json_atomic(target, {"epoch": 2, "padding": "x" * 100_000})
    message = str(error.value)
    assert f"cannot write {target}: the disk is full" in message, message
    assert "previous version, if any, is intact" in message
    assert "rerun the same command" in message and "resumes" in message
    assert json.loads(target.read_text()) == {"epoch": 1}
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("code, cause", [
    (errno.ENOSPC, "the disk is full"),
    (errno.EDQUOT, "the disk quota is exceeded"),
    (errno.EROFS, "the file system is read-only"),
    (errno.EACCES, "the directory is not writable"),
])
@pytest.mark.parametrize("where", ["write", "rename", "create"])
def test_every_disk_errno_anywhere_in_an_atomic_write_is_a_disk_error(tmp_path, monkeypatch,
                                                                      code, cause, where):
    target = tmp_path / "model.keras"
    target.write_bytes(b"the previous model")

    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    if where == "rename":
        monkeypatch.setattr(atomic.os, "replace", fail)
    elif where == "create":
        monkeypatch.setattr(atomic.tempfile, "mkstemp", fail)
    with pytest.raises(DiskError, match=re.escape(f"cannot write {target}: {cause}")) as error:
        with atomic_output(str(target), suffix=".keras") as tmp:
            with open(tmp, "wb") as f:
                f.write(b"half a mod")
                if where == "write":
                    fail()
    assert isinstance(error.value, UserError)
    assert target.read_bytes() == b"the previous model"
    assert _leftovers(tmp_path) == []


def test_other_os_errors_are_not_disguised_as_a_full_disk(tmp_path):
    with pytest.raises(OSError) as error:
        with atomic_output(str(tmp_path / "x.json")):
            raise OSError(errno.EIO, "Input/output error")
    assert not isinstance(error.value, DiskError)
    assert _leftovers(tmp_path) == []


def test_the_start_check_names_free_and_needed_space(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "free_mib", lambda directory: 12.5)
    with pytest.raises(DiskError) as error:
        check_disk(tmp_path / "run", 100)
    message = str(error.value)
    assert "has 12.5 MiB free" in message and "at least 100 MiB" in message, message
    assert "--min_free_mib" in message and "nothing was started" in message
    check_disk(tmp_path / "run", 0)  # 0: no free-space check
    check_disk(tmp_path / "run", 10)
    assert _leftovers(tmp_path / "run") == []  # the probe file is gone


def test_the_start_check_refuses_an_unwritable_directory(tmp_path, monkeypatch):
    def read_only(**kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(atomic.tempfile, "mkstemp", read_only)
    with pytest.raises(DiskError, match=r"cannot write to the run directory .*run: the "
                                        r"file system is read-only"):
        check_disk(tmp_path / "run")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to a read-only directory")
def test_a_chmod_read_only_directory_is_refused(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    run.chmod(0o500)
    try:
        with pytest.raises(DiskError, match="not writable"):
            check_disk(run)
    finally:
        run.chmod(0o700)


def test_the_run_lock_checks_the_disk_before_taking_the_lock(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "free_mib", lambda directory: 3.0)
    with pytest.raises(DiskError, match="has 3.0 MiB free"):
        with RunLock(tmp_path / "run", "bin/search", RuntimeError, min_free_mib=50):
            pass
    assert not (tmp_path / "run" / ".lock").exists()
    with pytest.raises(DiskError, match="the folder of table.json .* has 3.0 MiB free"):
        with RunLock(tmp_path / "table.json", "bin/latency_table", RuntimeError,
                     is_file=True, min_free_mib=50):
            pass
    with RunLock(tmp_path / "run", "bin/search", RuntimeError, min_free_mib=2):
        pass


def _commands(tmp_path):
    """Each long command, started on a disk with 1 MiB free (--min_free_mib=64)."""
    from tf_nas_seg.cli.latency_table import _run_locked
    from tf_nas_seg.latency.config import LatencyTableConfig
    from tf_nas_seg.search.search_config import SearchConfig
    from tf_nas_seg.search.search_runner import run_search
    from tf_nas_seg.sweep.sweep_config import SweepConfig
    from tf_nas_seg.sweep.sweep_runner import run_sweep
    from tf_nas_seg.train import TrainConfig, run_training

    return {
        "search": lambda: run_search(SearchConfig(run_dir=str(tmp_path / "search"),
                                                  min_free_mib=64)),
        "train": lambda: run_training(TrainConfig(run_dir=str(tmp_path / "train"),
                                                  peer="fast_scnn", min_free_mib=64)),
        "sweep": lambda: run_sweep(SweepConfig(run_dir=str(tmp_path / "sweep"),
                                               min_free_mib=64)),
        "latency_table": lambda: _run_locked(LatencyTableConfig(
            table=str(tmp_path / "tables" / "t.json"), target_height=32, target_width=32,
            min_free_mib=64)),
    }


@pytest.mark.parametrize("command", ["search", "train", "sweep", "latency_table"])
def test_every_long_command_refuses_to_start_on_a_full_disk(tmp_path, monkeypatch, command):
    monkeypatch.setattr(atomic, "free_mib", lambda directory: 1.0)
    with pytest.raises(DiskError, match="has 1.0 MiB free.*at least 64 MiB"):
        _commands(tmp_path)[command]()
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written == [], written  # refused before anything was written


# Checkpoints ---------------------------------------------------------------------------
def _checkpoint(tmp_path):
    variables = [keras.Variable([1.0, 2.0]), keras.Variable(3, dtype="int64")]
    return variables, VariableCheckpoint(variables, str(tmp_path / "checkpoints"))


def _failing_save(error, partial=True):
    real = tf.train.CheckpointManager.save

    def save(self, checkpoint_number=None, **kwargs):
        if checkpoint_number == 2:
            if partial:  # what a save cut short leaves
                prefix = os.path.join(self.directory, f"ckpt-{checkpoint_number}")
                open(prefix + ".data-00000-of-00001", "wb").write(b"\0" * 10)
                os.makedirs(prefix + "_temp", exist_ok=True)
                open(os.path.join(prefix + "_temp", "part-0"), "wb").write(b"\0")
            raise error
        return real(self, checkpoint_number=checkpoint_number, **kwargs)

    return save


@pytest.mark.parametrize("error, cause", [
    (tf.errors.ResourceExhaustedError(None, None, "ckpt-2_temp/part-00000; No space left "
                                                  "on device"), "the disk is full"),
    (tf.errors.ResourceExhaustedError(None, None, "Disk quota exceeded"),
     "the disk quota is exceeded"),
    (tf.errors.PermissionDeniedError(None, None, "ckpt-2.index; Read-only file system"),
     "the file system is read-only"),
    (tf.errors.PermissionDeniedError(None, None, "ckpt-2.index; Permission denied"),
     "the directory is not writable"),
    (OSError(errno.ENOSPC, "No space left on device"), "the disk is full"),
])
def test_a_checkpoint_on_a_full_disk_keeps_the_previous_one(tmp_path, monkeypatch, error,
                                                            cause):
    variables, state = _checkpoint(tmp_path)
    state.save(1)
    monkeypatch.setattr(tf.train.CheckpointManager, "save", _failing_save(error))
    variables[0].assign([5.0, 6.0])
    with pytest.raises(DiskError) as raised:
        state.save(2)
    message = str(raised.value)
    assert f"cannot write {tmp_path / 'checkpoints' / 'ckpt-2'}: {cause}" in message, message
    assert "previous checkpoint (ckpt-1) is intact and the failed one was removed" in message
    assert "rerun the same command" in message
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "checkpoint", "ckpt-1.data-00000-of-00001", "ckpt-1.index"]
    variables2, resumed = _checkpoint(tmp_path)
    assert resumed.restore() and int(resumed.step) == 1
    assert keras.ops.convert_to_numpy(variables2[0]).tolist() == [1.0, 2.0]


def test_out_of_memory_is_not_mistaken_for_a_full_disk(tmp_path, monkeypatch):
    _, state = _checkpoint(tmp_path)
    oom = tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")
    monkeypatch.setattr(tf.train.CheckpointManager, "save", _failing_save(oom, False))
    with pytest.raises(tf.errors.ResourceExhaustedError):
        state.save(2)


@pytest.mark.slow  # two trainings (~12 s idle); the checkpoint-on-full-disk tests stay fast
def test_a_training_run_stopped_by_a_full_disk_resumes_when_rerun(tmp_path, monkeypatch):
    """The checkpoint of iteration 4 fails: the run stops with a DiskError (exit 2 in
    bin/train), and the same command then resumes from iteration 3 and finishes."""
    from tf_nas_seg.train import TrainConfig, run_training

    config = TrainConfig(run_dir=str(tmp_path / "run"), peer="fast_scnn",
                         width_multiplier=0.25, synthetic_images=8, synthetic_val_images=4,
                         synthetic_height=32, synthetic_width=64, synthetic_classes=4,
                         batch_size=2, iterations=6, checkpoint_every=1, eval_every=0,
                         overlays=0, crop_height=32, crop_width=48)
    no_space = tf.errors.ResourceExhaustedError(None, None, "No space left on device")
    real = tf.train.CheckpointManager.save

    def save(self, checkpoint_number=None, **kwargs):
        if checkpoint_number == 4:
            raise no_space
        return real(self, checkpoint_number=checkpoint_number, **kwargs)

    monkeypatch.setattr(tf.train.CheckpointManager, "save", save)
    with pytest.raises(DiskError, match="ckpt-4: the disk is full.*ckpt-3"):
        run_training(config)
    monkeypatch.setattr(tf.train.CheckpointManager, "save", real)
    summary = run_training(config)
    assert summary["status"] == "completed" and summary["iterations"] == 6
