"""Carry a sweep to another machine: copy what it has finished into a small directory.

A study of many hours on a machine that does not keep its disk (a cloud instance that is
reclaimed, a lent machine) needs its finished points to outlive the machine. `bin/sweep
--pack=DIR` copies the sweep directory's finished work into DIR, which is itself a sweep
directory: copy it to the new machine (or commit it) and run the same bin/sweep command
with `--sweep_dir` pointing at a copy of it; nothing that DIR holds is recomputed.

What is copied:
- the sweep's config.json and flagfiles.json, its latency tables (once built and calibrated), the random
  architectures it drew, the shared benchmark and results.json/results.md/plots/;
- every finished search (summary, genotype, genotypes per epoch, history, plots, config,
  search split, log) and every finished training (summary, final model.keras, history,
  plots, config, class weights, log), those of --train_seeds (train_seedS/) included;
- with `unfinished=True`, also the run directories of searches and trainings that have
  started and not finished, with their latest checkpoint only, so that they resume from
  it rather than from the start.

What is left out: checkpoints of finished runs (a finished run never reads them),
TensorBoard event files (history.json and plots/ hold the same curves) and the
best-on-val model (the study reports the final checkpoint; the best one's scores stay
in train_summary.json).

The copy is made beside DIR and renamed over it, so DIR is always a whole pack.
"""

import os
import re
import shutil
import sys
import tempfile

from tf_nas_seg.errors import UserError
from tf_nas_seg.utils.json_files import run_completed

SKIPPED_NAMES = ("tensorboard", "best.keras", ".lock")


class PackError(UserError):
    """The sweep cannot be packed as asked; the message says why."""


def latest_checkpoint(directory):
    """The prefix (file name) of the latest checkpoint tf.train.CheckpointManager wrote
    in `directory`, or None."""
    try:
        with open(os.path.join(directory, "checkpoint"), encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return None
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() == "model_checkpoint_path":
            return os.path.basename(value.strip().strip('"'))
    return None


def _copy_run(source, dest, finished):
    """Copies the run directory `source` to `dest` without what a resumed or finished
    run does not read; an unfinished run keeps its latest checkpoint only."""
    def ignore(directory, names):
        skipped = {n for n in names if n in SKIPPED_NAMES}
        if os.path.basename(directory) == "checkpoints" and not finished:
            latest = latest_checkpoint(directory)
            skipped |= {n for n in names if n != "checkpoint"
                        and not (latest and n.startswith(latest + "."))}
        if finished and directory == source:
            skipped.add("checkpoints")
        return skipped

    shutil.copytree(source, dest, ignore=ignore)
    if not finished:
        state = os.path.join(dest, "checkpoints", "checkpoint")
        latest = latest_checkpoint(os.path.dirname(state))
        if latest:  # the state names only the checkpoint that was kept
            with open(state, "w", encoding="utf-8") as f:
                f.write(f'model_checkpoint_path: "{latest}"\n'
                        f'all_model_checkpoint_paths: "{latest}"\n')


def _copy_file(source, dest):
    if os.path.isfile(source):
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copy2(source, dest)


def _checkpoint_bytes(run_dir):
    directory = os.path.join(run_dir, "checkpoints")
    latest = latest_checkpoint(directory)
    if not latest:
        return 0
    return sum(os.path.getsize(os.path.join(directory, n)) for n in os.listdir(directory)
               if n.startswith(latest + "."))


def pack_sweep(sweep_dir, dest, unfinished=False, max_checkpoint_mib=16.0):
    """Copies the finished work of `sweep_dir` into `dest` (see the module docstring).

    It may run while the sweep runs: finished runs no longer change, and the files the
    sweep rewrites (results, tables) are replaced atomically.

    Args:
        max_checkpoint_mib: With `unfinished`, a started run whose latest checkpoint is
            larger than this is left out, with a message (a supernet's checkpoint is tens
            of MiB; a pack is meant to be small enough to commit).

    Returns:
        {"dir", "finished": [names of copied finished runs], "unfinished": [...],
         "left_out": [unfinished runs whose checkpoint was too large], "bytes"}.
    """
    sweep_dir = os.path.abspath(os.path.expanduser(sweep_dir))
    dest = os.path.abspath(os.path.expanduser(dest))
    if not os.path.isfile(os.path.join(sweep_dir, "config.json")):
        raise PackError(f"{sweep_dir} is not a sweep directory (it has no config.json); "
                        "give the --sweep_dir of a sweep that has started")
    if dest == sweep_dir or dest.startswith(sweep_dir + os.sep) or sweep_dir.startswith(
            dest + os.sep):
        raise PackError(f"--pack={dest} must lie outside the sweep directory {sweep_dir} "
                        "(and not contain it)")
    parent = os.path.dirname(dest)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=".tmp_pack_")
    copied, partial, left_out = [], [], []
    try:
        for name in ("config.json", "flagfiles.json", "results.json", "results.md"):
            _copy_file(os.path.join(sweep_dir, name), os.path.join(tmp, name))
        for folder in ("plots", "bench"):
            if os.path.isdir(os.path.join(sweep_dir, folder)):
                shutil.copytree(os.path.join(sweep_dir, folder), os.path.join(tmp, folder))
        tables = os.path.join(sweep_dir, "tables")
        if os.path.isdir(tables):
            for name in sorted(os.listdir(tables)):
                stem = name.split(".")[0]
                if os.path.exists(os.path.join(tables, stem + ".json.done")):
                    _copy_file(os.path.join(tables, name), os.path.join(tmp, "tables", name))
        points = os.path.join(sweep_dir, "points")
        for name in sorted(os.listdir(points)) if os.path.isdir(points) else ():
            source = os.path.join(points, name)
            target = os.path.join(tmp, "points", name)
            if os.path.isfile(source):  # random_<method>_samples.json
                _copy_file(source, target)
                continue
            _copy_file(os.path.join(source, "genotype.json"),
                       os.path.join(target, "genotype.json"))  # a random network's
            runs = [("search", "search.log", "search_summary.json"),
                    ("train", "train.log", "train_summary.json")]
            runs += [(d, f"{d}.log", "train_summary.json") for d in sorted(os.listdir(source))
                     if re.fullmatch(r"train_seed\d+", d)]  # --train_seeds
            for run, log, summary in runs:
                run_dir = os.path.join(source, run)
                if not os.path.isdir(run_dir):
                    continue
                finished = run_completed(os.path.join(run_dir, summary))
                if not finished and not unfinished:
                    continue
                if not finished and _checkpoint_bytes(run_dir) > max_checkpoint_mib * 2 ** 20:
                    left_out.append(f"{name}/{run}")
                    print(f"[sweep] not packed: {name}/{run}, unfinished, its latest "
                          f"checkpoint is over {max_checkpoint_mib:g} MiB "
                          "(--pack_max_checkpoint_mib); it restarts from the beginning "
                          "where the pack resumes", file=sys.stderr)
                    continue
                _copy_run(run_dir, os.path.join(target, run), finished)
                _copy_file(os.path.join(source, log), os.path.join(target, log))
                (copied if finished else partial).append(f"{name}/{run}")
        if os.path.isdir(dest):
            old = tempfile.mkdtemp(dir=parent, prefix=".tmp_old_pack_")
            os.rename(dest, os.path.join(old, "pack"))
            os.rename(tmp, dest)
            shutil.rmtree(old)
        else:
            os.rename(tmp, dest)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp)
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(dest)
               for f in files)
    print(f"[sweep] packed {len(copied)} finished and {len(partial)} unfinished runs of "
          f"{sweep_dir} into {dest} ({size / 2 ** 20:.1f} MiB)", file=sys.stderr)
    return {"dir": dest, "finished": copied, "unfinished": partial, "left_out": left_out,
            "bytes": size}
