"""The measured tiny table the latency tests share (helpers: tests/latency/helpers.py)."""

import pytest

from tests.latency.helpers import fast_timer, tiny_settings, tiny_space
from tf_nas_seg.latency.builder import build_table, open_table


@pytest.fixture(scope="session")
def tiny_table(tmp_path_factory):
    """A measured table of the tiny CAS space (backbone + multi-scale cell)."""
    path = tmp_path_factory.mktemp("tables") / "tiny.json"
    table = open_table(str(path), tiny_settings(tiny_space()))
    table, _ = build_table(table, fast_timer(), batch=1, progress=lambda _: None)
    return table
