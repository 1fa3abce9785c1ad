"""Progress bars write lines, not redraws, when their output is not a terminal."""

import io
import sys

from tf_nas_seg.utils.progress import LOG_INTERVAL, ProgressBar


class _Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


def _run(monkeypatch, tty):
    stream = _Stream(tty)
    monkeypatch.setattr(sys, "stdout", stream)
    bar = ProgressBar(1000, unit_name="it")
    for i in range(1, 1001):
        bar.update(i, values=[("loss", 1.0 / i)])
    return bar, stream.getvalue()


def test_off_a_terminal_the_bar_writes_lines_every_interval(monkeypatch):
    bar, text = _run(monkeypatch, tty=False)
    assert not bar._dynamic_display and bar.interval == LOG_INTERVAL
    assert "\r" not in text and "\b" not in text
    # 1,000 fast updates within one interval: the first line and the final one only.
    assert text.count("\n") <= 3 and "1000/1000" in text


def test_in_a_terminal_the_bar_redraws_in_place(monkeypatch):
    bar, text = _run(monkeypatch, tty=True)
    assert bar._dynamic_display and bar.interval < 1
    assert "\r" in text
