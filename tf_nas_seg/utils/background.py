"""Work handed to one background thread, one task at a time, so the caller goes on.

The search draws each epoch's figures (matplotlib, about 0.8 s on 2 cores at the demo
size) while the next epoch trains: the training step releases the GIL inside its
compiled function, so the drawing overlaps it. One thread and one task at a time keep
the figures in epoch order and pyplot on one thread.
"""

import concurrent.futures

from absl import logging


class OneAtATime:
    """Runs callables on one worker thread; `submit` first waits for the previous one.

    Use as a context manager: leaving it waits for the last task. A task's exception is
    raised by the next `submit`, by `wait` or on leaving (unless another exception is
    already leaving, which it then does not mask: it is logged).

    Args:
        name: The worker thread's name prefix (seen in profilers and tracebacks).
    """

    def __init__(self, name):
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1,
                                                           thread_name_prefix=name)
        self._pending = None

    def submit(self, task):
        """Waits for the previous task (raising its error), then starts `task()`."""
        self.wait()
        self._pending = self._pool.submit(task)

    def wait(self):
        """Waits for the pending task, if any; raises what it raised."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        try:
            self.wait()
        except Exception:
            if kind is None:
                raise
            logging.exception("a background task failed while another error was raised")
        finally:
            self._pool.shutdown(wait=True)
        return False
