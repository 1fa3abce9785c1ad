"""What every long job (search, training) does with its run directory.

* `check_or_write_config`: a run directory belongs to one configuration; rerunning with
  other settings is refused (naming the differences) instead of silently mixing runs.
* `VariableCheckpoint`: checkpoints a list of Keras/TF variables by position, with a
  step counter and the elapsed wall time, keeps the last few, restores exactly and
  refuses a checkpoint written by a different model.
* `StopSignals`: SIGINT/SIGTERM set a flag so the loop finishes its step, checkpoints
  and returns; the same command then resumes.
"""

import contextlib
import errno
import math
import os
import signal
import time

import keras
import tensorflow as tf
from absl import logging

from tf_nas_seg.utils.atomic import (DEFAULT_MIN_FREE_MIB, DISK_CAUSES, check_disk,
                                    disk_cause, disk_error)
from tf_nas_seg.utils.json_files import read_json
from tf_nas_seg.space.genotype import write_json_atomic


def _checkpoint_disk_cause(error):
    """The disk cause ('the disk is full', ...) of a failed checkpoint write, or None.

    TensorFlow's file system reports errno as a status code: ENOSPC and EDQUOT are
    RESOURCE_EXHAUSTED, EACCES, EPERM and EROFS are PERMISSION_DENIED.
    """
    if isinstance(error, OSError):
        return disk_cause(error)
    message = str(getattr(error, "message", error))
    if isinstance(error, tf.errors.ResourceExhaustedError):
        if "quota" in message.lower():
            return DISK_CAUSES[errno.EDQUOT]
        if "no space" in message.lower():
            return DISK_CAUSES[errno.ENOSPC]
        return None  # out of memory, not disk
    if isinstance(error, tf.errors.PermissionDeniedError):
        if "read-only" in message.lower():
            return DISK_CAUSES[errno.EROFS]
        return DISK_CAUSES[errno.EACCES]
    return None


def check_or_write_config(run_dir, current, resumable_changes, error_cls, defaults=None,
                          renamed=None):
    """Writes `run_dir/config.json`, or checks it against the one already there.

    Args:
        run_dir: The run directory (created if needed).
        current: The JSON-able config of this invocation.
        resumable_changes: Keys that may differ between a run and its resumption.
        error_cls: Exception class raised on a mismatch.
        defaults: The JSON-able default config. A setting missing from the saved
            config (the run was started by an older version, before the setting
            existed) matches when this invocation leaves it at its default, which
            reproduces the older behaviour.
        renamed: {old key: new key} of settings renamed since: a saved config written
            under the old names is read (and rewritten) under the new ones.

    Raises:
        error_cls: The directory holds a run with other settings.
    """
    os.makedirs(run_dir, exist_ok=True)
    path = os.path.join(run_dir, "config.json")
    if os.path.exists(path):
        saved = read_json(path, error_cls, "it records the run's settings; restore it, "
                          "or pass a new --run_dir")
        for old, new in (renamed or {}).items():
            if old in saved and new not in saved:
                saved[new] = saved.pop(old)
        defaults = defaults or {}
        changed = sorted(
            k for k in set(saved) | set(current)
            if k not in resumable_changes and saved.get(k) != current.get(k)
            and not (k not in saved and k in defaults and current.get(k) == defaults[k]))
        if changed:
            details = ", ".join(f"{k}: {saved.get(k)!r} -> {current.get(k)!r}"
                                for k in changed)
            raise error_cls(f"{run_dir} holds a run with other settings ({details}); "
                            "resume it with the same settings, or pass a new --run_dir")
    write_json_atomic(path, current)


def configure_tensorflow(seed, deterministic, threads):
    """Seeds Python, NumPy, TF and Keras; optionally deterministic kernels, fixed threads."""
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
        except RuntimeError:
            logging.warning("TensorFlow was already initialised; --threads ignored")


def set_graph_optimizer(mode):
    """Turns Grappler (TensorFlow's graph optimiser) on or off for this process.

    NOTE: Grappler rewrites every `tf.function` graph on its first call. On a CPU the
    search step's rewrites cost more than they return: at the demo size (62,571 nodes)
    the first call took 51 s with Grappler and 31 s without, and steps took the same
    time (1.1 and 1.0 s; docs/DESIGN.md, "Compile time"). On a GPU its layout and fusion
    passes matter, so "auto" keeps it there.

    Args:
        mode: "on", "off", or "auto" (off when TensorFlow sees no GPU).

    Returns:
        "on" or "off", what was applied.
    """
    if mode not in ("auto", "on", "off"):
        raise ValueError(f"graph optimizer mode must be auto, on or off, got {mode!r}")
    if mode == "auto":
        mode = "on" if tf.config.list_physical_devices("GPU") else "off"
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": mode == "off"})
    return mode


@contextlib.contextmanager
def graph_optimizer(mode):
    """`set_graph_optimizer(mode)` for the duration of a `with` block; yields the mode
    applied and restores the previous setting after, so that a search run in-process
    (tests, notebooks) leaves later training with TensorFlow's defaults."""
    before = tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer",
                                                                 False)
    applied = set_graph_optimizer(mode)
    try:
        yield applied
    finally:
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": before})


# What reading a missing, truncated or garbled checkpoint raises (TF's readers, and the
# Python side of restore: "Read less bytes than requested" is an IndexError).
_UNREADABLE = (tf.errors.OpError, ValueError, IndexError, KeyError, EOFError, OSError,
               AssertionError)


class VariableCheckpoint:
    """Checkpoints `variables` (by position), a step counter and elapsed seconds.

    Keras 3 variables wrap tf.Variables; the checkpoint tracks the wrapped ones under
    keys given by their position in `variables`, so the list must be built in a
    deterministic order (model construction order, then optimizer slots).

    Args:
        variables: Keras or TF variables.
        directory: Where checkpoints go.
        max_to_keep: Checkpoints kept.
        error_cls: Exception class raised when a checkpoint does not fit.
        extra: Optional {name: tf.Variable} saved alongside (e.g. best score).
        optional: {name: variable} saved alongside, and restored when the checkpoint
            holds them: state added after runs were started (the search's epoch metric
            accumulators), so that a checkpoint written before keeps resuming.
        unsaved: Variables of `variables` that are not saved: state the run never
            reads or writes (a search supernet's batch-norm moving statistics, when it
            normalises with batch statistics). The others keep their positions' keys,
            and a checkpoint that holds the unsaved ones (written before they were left
            out) still restores, into them. `saved_variables` lists the others.
    """

    def __init__(self, variables, directory, max_to_keep=3, error_cls=ValueError,
                 extra=None, optional=None, unsaved=()):
        variables = list(variables)
        self.variables = variables
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.elapsed = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="elapsed")
        skipped = {id(v) for v in unsaved}
        self._unsaved = {f"v{i:05d}": getattr(v, "value", v)
                         for i, v in enumerate(variables) if id(v) in skipped}
        self.saved_variables = [v for v in variables if id(v) not in skipped]
        state = {f"v{i:05d}": getattr(v, "value", v) for i, v in enumerate(variables)
                 if id(v) not in skipped}
        state["global_step"] = self.step
        state["elapsed_seconds"] = self.elapsed
        for name, variable in (extra or {}).items():
            state[name] = variable
        self._optional = {name: getattr(v, "value", v) for name, v in (optional or {}).items()}
        state.update(self._optional)
        self._state = state
        self._shapes = {i: tuple(v.shape) for i, v in enumerate(variables)
                        if id(v) not in skipped}
        self._error_cls = error_cls
        self.checkpoint = tf.train.Checkpoint(state=state)
        self.manager = tf.train.CheckpointManager(self.checkpoint, directory,
                                                  max_to_keep=max_to_keep)
        self._started = time.time()
        self._elapsed0 = 0.0

    def restore(self):
        """Restores the newest readable checkpoint; returns False when there is none.

        A checkpoint whose files are missing, truncated or corrupt (a disk that filled
        up, a copy cut short) is skipped with a warning naming it, and the one before
        it is used; if none is readable the error names them all. A checkpoint of
        another model (variable shapes differ) is refused, not skipped.
        """
        candidates = list(reversed(self.manager.checkpoints))
        latest = self.manager.latest_checkpoint
        if latest is not None and latest not in candidates:
            candidates.insert(0, latest)
        skipped = []
        restored = None
        for index, path in enumerate(candidates):
            try:
                saved = dict(tf.train.list_variables(path))
                self._check_shapes(path, saved)
                self._checkpoint_for(path, saved).restore(path).assert_consumed()
            except self._error_cls:
                raise  # another model's checkpoint (error classes may be ValueErrors)
            except _UNREADABLE as e:
                skipped.append(path)
                logging.warning("checkpoint %s is unreadable (%s: %s); %s", path,
                                type(e).__name__, str(e).splitlines()[0][:200],
                                "using the one before it" if index + 1 < len(candidates)
                                else "no earlier one")
                continue
            restored = path
            break
        if candidates and restored is None:
            names = ", ".join(os.path.basename(p) for p in skipped)
            raise self._error_cls(
                f"no readable checkpoint in {self.manager.directory} ({names}: corrupt or "
                "incomplete); restore them from a copy, or delete that directory to start "
                "the run over")
        if restored is not None:
            logging.info("resumed from %s at step %d", restored, int(self.step.numpy()))
        self._started, self._elapsed0 = time.time(), float(self.elapsed.numpy())
        return restored is not None

    def _checkpoint_for(self, path, saved):
        """The checkpoint object that reads `path`: all the state, or (a checkpoint
        written before the optional state existed) all but the optional entries it
        lacks, which keep their current values; plus the unsaved variables it holds
        (a checkpoint written before they were left out)."""
        def held(name):
            return f"state/{name}/.ATTRIBUTES/VARIABLE_VALUE" in saved

        missing = [name for name in self._optional if not held(name)]
        unsaved = {k: v for k, v in self._unsaved.items() if held(k)}
        if not missing and not unsaved:
            return self.checkpoint
        if missing:
            logging.warning("checkpoint %s holds no %s (written by an older version); "
                            "they go on from their current values", path,
                            ", ".join(missing))
        state = {k: v for k, v in self._state.items() if k not in missing}
        return tf.train.Checkpoint(state={**state, **unsaved})

    def _check_shapes(self, path, saved):
        """Refuses (error_cls, not skipped) a checkpoint written by another model."""
        for i, shape in self._shapes.items():
            key = f"state/v{i:05d}/.ATTRIBUTES/VARIABLE_VALUE"
            if key not in saved or tuple(saved[key]) != shape:
                raise self._error_cls(
                    f"checkpoint {path} does not match this model (variable {i}: "
                    f"{saved.get(key)} saved vs {list(shape)} now); resume with the "
                    "same settings or pass a new --run_dir")

    def elapsed_seconds(self):
        """Wall seconds of this run over all its invocations."""
        return self._elapsed0 + time.time() - self._started

    def save(self, step):
        """Checkpoints with the step counter set to `step`.

        A full disk, a quota, a read-only file system or a directory without write
        permission is a `DiskError` naming the checkpoint and the cause; the files of the
        failed checkpoint are removed, and the checkpoints before it (which TensorFlow
        deletes only after a new one is recorded) stay as they were.
        """
        self.step.assign(step)
        self.elapsed.assign(self.elapsed_seconds())
        try:
            self.manager.save(checkpoint_number=int(step))
        except (tf.errors.OpError, OSError) as e:
            cause = _checkpoint_disk_cause(e)
            if cause is None:
                raise
            prefix = os.path.join(self.manager.directory, f"ckpt-{int(step)}")
            self._remove_partial(prefix)
            previous = self.manager.latest_checkpoint
            kept = (f"The previous checkpoint ({os.path.basename(previous)}) is intact"
                    if previous else "There is no earlier checkpoint")
            detail = (str(getattr(e, "message", e)).strip().splitlines() or [""])[-1]
            raise disk_error(prefix, cause, detail[:300],
                             kept=kept + " and the failed one was removed") from None

    @staticmethod
    def _remove_partial(prefix):
        """Removes what a failed save of checkpoint `prefix` left (data, index, temp)."""
        import glob
        import shutil

        for path in glob.glob(glob.escape(prefix) + ".*") + glob.glob(
                glob.escape(prefix) + "_temp*"):
            try:
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.unlink(path)
            except OSError:
                pass


class VariableSnapshot:
    """A copy of `variables` taken before a step and put back if the step is discarded.

    The copies are variables on the same devices, written and read by two compiled
    functions (one assignment per variable each), so taking a snapshot costs a copy of
    the state in device memory and no transfer to the host.
    """

    def __init__(self, variables):
        self._variables = [getattr(v, "value", v) for v in variables]
        with tf.init_scope():
            self._copies = [tf.Variable(v.read_value(), trainable=False,
                                        name=f"snapshot_{i}")
                            for i, v in enumerate(self._variables)]

        def save():
            for copy, variable in zip(self._copies, self._variables):
                copy.assign(variable.read_value())

        def restore():
            for copy, variable in zip(self._copies, self._variables):
                variable.assign(copy.read_value())

        self.save = tf.function(save, autograph=False)
        self.restore = tf.function(restore, autograph=False)


class NonfiniteSteps:
    """What a run does with a step whose loss is NaN or infinite.

    By default it stops the run: the step has already changed the variables in memory,
    so nothing is saved after it and the last checkpoint stays the last good state
    (`stop` names the iteration, that checkpoint and the setting to lower). With
    --skip_nonfinite_steps (`skip`), the step is skipped instead: the variables are
    copied before every step and copied back when a watched value is not finite.

    NOTE: the copy is taken before the step and restored after it, rather than the
    update being computed and applied only when finite, because a step changes more
    than what its optimizer applies: the forward pass updates batch-norm moving
    statistics and metric accumulators, and a search step applies two optimizers one
    after the other (the architecture step's loss is known only after its update).
    Restoring the copy puts back exactly every variable the checkpoint holds, whatever
    the step did, at the cost of one device-side copy per step.

    Skipped iterations are written to RUN_DIR/skipped_steps.json as they happen; a
    resumed run keeps those up to its checkpoint (the later ones run again). More than
    `max_consecutive` skipped steps in a row stop the run: it has diverged.

    Args:
        run_dir: The run directory.
        variables: What a skipped step must leave unchanged (the checkpoint's variables
            and the metrics' accumulators).
        skip: --skip_nonfinite_steps.
        max_consecutive: --max_skipped_steps.
        error_cls: The run's error class.
    """

    FILE = "skipped_steps.json"

    def __init__(self, run_dir, variables, skip, max_consecutive, error_cls):
        self.path = os.path.join(run_dir, self.FILE)
        self.snapshot = VariableSnapshot(variables) if skip else None
        self.max_consecutive = int(max_consecutive)
        self.error_cls = error_cls
        self.skipped = []  # [{"iteration": i, "values": {name: "nan"}}], in order
        self.consecutive = 0

    def resume(self, step):
        """Keeps the skips recorded up to `step`, the checkpoint's iteration."""
        record = read_json(self.path, self.error_cls,
                           "delete it (it only counts skipped steps) and rerun") or {}
        entries = record.get("skipped", []) if isinstance(record, dict) else []
        self.skipped = [e for e in entries if isinstance(e, dict)
                        and isinstance(e.get("iteration"), int) and e["iteration"] <= step]
        self.consecutive = 0

    def before_step(self):
        """Copies the variables (only with --skip_nonfinite_steps)."""
        if self.snapshot is not None:
            self.snapshot.save()

    def check(self, iteration, values, last_checkpoint, cause):
        """True when every value is finite (the step counts); False when the step was
        skipped (the variables are back as before it).

        Args:
            iteration: The step's iteration (1-based: the count after it).
            values: {name: float} the step produced that must be finite.
            last_checkpoint: Iteration of the last checkpoint, for messages.
            cause: {name: the settings to lower} for the message ("--lr ...").

        Raises:
            error_cls: a value is not finite and steps are not skipped, or more than
                max_consecutive steps in a row were skipped.
        """
        bad = [(name, value) for name, value in values.items() if not math.isfinite(value)]
        if not bad:
            self.consecutive = 0
            return True
        name, value = bad[0]
        if self.snapshot is None:
            raise self.error_cls(
                f"the {name} became {value} at iteration {iteration}; nothing was saved "
                f"after it, so the last checkpoint (iteration {last_checkpoint}) is the "
                f"last good state. Likely cause: too large a step; lower {cause[name]} "
                "and start a new --run_dir, or rerun the same command with "
                "--skip_nonfinite_steps to skip such steps")
        self.snapshot.restore()
        self.consecutive += 1
        self.skipped.append({"iteration": int(iteration),
                             "values": {n: str(v) for n, v in bad}})
        write_json_atomic(self.path, {"skipped": self.skipped})
        logging.warning("iteration %d skipped (--skip_nonfinite_steps): %s not finite; the "
                        "variables are as before it (%d skipped in all)", iteration,
                        ", ".join(f"{n}={v}" for n, v in bad), len(self.skipped))
        if self.consecutive > self.max_consecutive:
            first = iteration - self.consecutive + 1
            raise self.error_cls(
                f"{self.consecutive} consecutive steps (iterations {first}-{iteration}) "
                f"were skipped, more than --max_skipped_steps={self.max_consecutive}: "
                f"the {name} is {value} after every step, so the run has diverged rather "
                "than met a bad batch. Every skipped step was undone, so the last "
                f"checkpoint (iteration {last_checkpoint}) is a good state. Likely cause: "
                f"too large a step; lower {cause[name]} and start a new --run_dir")
        return False

    def count(self, start=0, end=None):
        """Skipped iterations in (start, end]."""
        return sum(1 for e in self.skipped
                   if e["iteration"] > start and (end is None or e["iteration"] <= end))

    def summary(self):
        """The summary's record: {"count", "iterations"}."""
        return {"count": len(self.skipped),
                "iterations": [e["iteration"] for e in self.skipped]}


class RunLock:
    """Holds an exclusive lock on a run directory (or a file's `.lock`) for one process.

    Two commands started on one run directory would both write its checkpoints; the
    second one refuses instead, naming the process that holds the directory. The lock
    is `fcntl.flock` on `<dir>/.lock`, released by the kernel when the holder exits,
    even on SIGKILL, so a crashed run never leaves a stale lock behind.

        with RunLock(run_dir, "bin/search", SearchError, min_free_mib=100):
            ...

    Before taking the lock it checks that the directory is writable and has
    `min_free_mib` free (`utils.atomic.check_disk`): every long command takes this lock
    first, so a full or read-only disk stops it before any work is done.
    """

    def __init__(self, path, command, error_cls, is_file=False,
                 min_free_mib=DEFAULT_MIN_FREE_MIB):
        self.path = os.path.abspath(path) + ".lock" if is_file else os.path.join(
            os.path.abspath(path), ".lock")
        self.target = os.path.abspath(path)
        self.command = command
        self.error_cls = error_cls
        self.is_file = is_file
        self.min_free_mib = min_free_mib
        self._file = None

    def __enter__(self):
        import fcntl

        check_disk(os.path.dirname(self.path), self.min_free_mib,
                   f"the folder of {os.path.basename(self.target)}" if self.is_file
                   else "the run directory")
        f = open(self.path, "a+")  # noqa: SIM115 (held until __exit__)
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise self.error_cls(
                f"{self.target} is in use by {holder}; wait for it to finish or stop it "
                "(Ctrl-C checkpoints it), or pass another directory") from None
        f.seek(0)
        f.truncate()
        f.write(f"{self.command} (pid {os.getpid()}, started "
                f"{time.strftime('%Y-%m-%d %H:%M:%S')})\n")
        f.flush()
        self._file = f
        return self

    def __exit__(self, *exc):
        import fcntl

        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        return False


class StopSignals:
    """Context manager: SIGINT/SIGTERM set `.received` instead of killing the job."""

    def __init__(self):
        self.received = None
        self._old = {}

    def _handle(self, signum, frame):
        del frame
        self.received = signum
        logging.warning("signal %d: finishing this step, checkpointing and stopping", signum)

    def __enter__(self):
        self._old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT,
                                                                  signal.SIGTERM)}
        return self

    def __exit__(self, *exc):
        for s, handler in self._old.items():
            signal.signal(s, handler)
        return False


def record_skipped_examples(run_dir, splits):
    """Logs and writes the examples --skip_bad_examples left out, per split.

    Args:
        run_dir: The run directory; RUN_DIR/skipped_examples.json gets every entry.
        splits: {split name: the source's `skipped` entries}.

    Returns:
        The summary's record: {"count": n, split: n, ..., "file": the JSON} (count 0 and
        no file when nothing was skipped).
    """
    counts = {name: len(entries) for name, entries in splits.items()}
    total = sum(counts.values())
    record = {"count": total, **counts}
    if not total:
        return record
    path = os.path.join(run_dir, "skipped_examples.json")
    write_json_atomic(path, {name: list(entries) for name, entries in splits.items()})
    for name, entries in splits.items():
        for entry in entries:
            logging.warning("skipped a bad %s example (--skip_bad_examples): %s", name,
                            entry["error"])
    logging.warning("--skip_bad_examples: %d bad examples left out (%s); listed in %s",
                    total, ", ".join(f"{n} {name}" for name, n in counts.items()), path)
    record["file"] = path
    return record
