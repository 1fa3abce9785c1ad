"""Atomic file output: write to a temp file beside the target, then rename over it."""

import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_output(path, suffix=""):
    """Yields a temp path in `path`'s folder; renames it to `path` if the block succeeds.

    A failure (or interruption) inside the block leaves `path` as it was and removes
    the temp file, so readers never see a half-written file.

    Args:
        path: The final file.
        suffix: Suffix of the temp file (some writers pick the format from it).
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp_", suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
