"""Atomic file output, and what a full or unwritable disk becomes.

Every file a run writes goes through `atomic_output` (JSON through
`tf_nas_seg.space.genotype.write_json_atomic`; checkpoints through
`tf_nas_seg.utils.run_state.VariableCheckpoint`), so a disk that fills up, a quota, a
read-only file system or a directory without write permission is handled here once: the
write raises a `DiskError` naming the file and the cause, the temporary file is removed
and the previous version of the file stays as it was. `check_disk` is the check every
long command makes before it starts (through `run_state.RunLock`).
"""

import contextlib
import errno
import os
import tempfile

from tf_nas_seg.errors import DiskError

# The errors of a write that the user fixes on the machine, not in tf_nas_seg.
DISK_CAUSES = {errno.ENOSPC: "the disk is full",
               errno.EDQUOT: "the disk quota is exceeded",
               errno.EROFS: "the file system is read-only",
               errno.EACCES: "the directory is not writable",
               errno.EPERM: "the directory is not writable"}
# Free space every long command asks for before it starts (--min_free_mib).
DEFAULT_MIN_FREE_MIB = 100
RESUME_HINT = ("free some space (or make the directory writable) and rerun the same "
               "command: a run resumes from its last checkpoint")


def disk_cause(error):
    """'the disk is full', ... for an OSError a write failed with; None for other errors."""
    if isinstance(error, OSError):
        return DISK_CAUSES.get(error.errno)
    return None


def disk_error(path, cause, detail="", kept=None):
    """The DiskError of a failed write of `path`, naming the cause and what is intact.

    Args:
        path: The file (or checkpoint) that could not be written.
        cause: What went wrong, in words (`DISK_CAUSES`).
        detail: The system's own message, appended in parentheses.
        kept: What is intact, in words; default: the previous version of `path`.
    """
    kept = kept or (f"{path} was left as it was (its previous version, if any, is "
                    "intact; no partial file was written)")
    detail = f" ({detail})" if detail else ""
    return DiskError(f"cannot write {path}: {cause}{detail}. {kept}; {RESUME_HINT}")


@contextlib.contextmanager
def atomic_output(path, suffix=""):
    """Yields a temp path in `path`'s folder; renames it to `path` if the block succeeds.

    A failure (or interruption) inside the block leaves `path` as it was and removes
    the temp file, so readers never see a half-written file. A full disk, a quota, a
    read-only file system or a directory without write permission (while creating the
    folder, writing the temp file or renaming it) is a `DiskError` naming `path` and
    the cause.

    Args:
        path: The final file.
        suffix: Suffix of the temp file (some writers pick the format from it).
    """
    directory = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp_", suffix=suffix)
        os.close(fd)
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        cause = disk_cause(e)
        if cause is None:
            raise
        raise disk_error(path, cause, e.strerror or str(e)) from e
    finally:
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)


def free_mib(directory):
    """MiB free for this user on the file system of `directory`."""
    stats = os.statvfs(directory)
    return stats.f_bavail * stats.f_frsize / 2 ** 20


def check_disk(directory, min_free_mib=DEFAULT_MIN_FREE_MIB, what="the run directory"):
    """Checks, before a long command starts, that it can write to `directory`.

    Creates the directory, writes and removes a small probe file (a read-only file
    system or a directory without permission fails here, not at the first checkpoint)
    and compares the free space with `min_free_mib`.

    Args:
        directory: The run directory (or the folder of a table or report).
        min_free_mib: Least free space, MiB; 0 skips the free-space check.
        what: What the directory is, for the message.

    Raises:
        DiskError: naming the directory, the cause, and for too little space how much
            is free and how much is asked for.
    """
    directory = os.path.abspath(directory)
    try:
        os.makedirs(directory, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".tmp_probe_")
        try:
            os.write(fd, b"\0" * 4096)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as e:
        cause = disk_cause(e)
        if cause is None:
            raise
        raise DiskError(f"cannot write to {what} {directory}: {cause} ({e.strerror}); "
                        "nothing was started. Make it writable, free some space, or "
                        "pass another directory") from e
    if min_free_mib:
        free = free_mib(directory)
        if free < min_free_mib:
            raise DiskError(
                f"{what} {directory} has {free:.1f} MiB free on its disk, and at least "
                f"{min_free_mib} MiB are needed to write checkpoints and results "
                "(--min_free_mib); nothing was started. Free some space, pass a directory "
                "on another disk, or lower --min_free_mib")
