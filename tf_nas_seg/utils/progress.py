"""Progress bars that redraw in a terminal and log a line now and then elsewhere."""

import sys

import keras

# Seconds between the lines of a progress bar whose output is not a terminal.
LOG_INTERVAL = 30.0


class ProgressBar(keras.utils.Progbar):
    """`keras.utils.Progbar`, redrawn in place only when stdout is a terminal.

    NOTE: Keras decides to redraw in place (carriage returns, one update every 0.05 s)
    whenever `"posix" in sys.modules`, i.e. on every Linux and macOS process, so a run
    whose output goes to a file or a pipe (bin/sweep's point logs, nohup, CI) wrote
    about 0.9 MB of overdrawn bars per 4,000-iteration training. Off a terminal this
    bar writes one line every `LOG_INTERVAL` seconds, and the last one.
    """

    def __init__(self, target, **kwargs):
        interactive = hasattr(sys.stdout, "isatty") and sys.stdout.isatty()
        if not interactive:
            kwargs.setdefault("interval", LOG_INTERVAL)
        super().__init__(target, **kwargs)
        self._dynamic_display = interactive
