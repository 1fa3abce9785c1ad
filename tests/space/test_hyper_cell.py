"""Hyper-cell exits: a hard sample selects one cell's output and skips the later cells;
the two-input rule hands the next reduction cell x_k and x_(k-1)."""

import numpy as np
import pytest
from keras import ops

from tf_nas_seg.space.cell import Cell
from tf_nas_seg.space.hyper_cell import HyperCell
from tf_nas_seg.space.temperature_schedule import TemperatureSchedule

CELLS = 4


@pytest.fixture(scope="module")
def hyper():
    rng = np.random.default_rng(0)
    layer = HyperCell("autortnet_cell", steps=2, channels=3, num_cells=CELLS,
                      reduction_prev=True, name="hyper")
    s0 = rng.normal(size=(2, 16, 16, 4)).astype("float32")
    s1 = rng.normal(size=(2, 8, 8, 5)).astype("float32")
    ops_w = ops.softmax(rng.normal(size=(5, 10)).astype("float32"))
    layer(s0, s1, ops_w, ops_w, ops.one_hot(0, CELLS), hard=True)  # builds every cell
    # Every cell's output computed by hand, in inference mode (BN statistics fixed).
    xs = [s1]
    a, b = s0, s1
    for k, cell in enumerate(layer.cells):
        a, b = b, cell(a, b, ops_w, training=False)
        xs.append(b)
    return layer, s0, s1, ops_w, [ops.convert_to_numpy(x) for x in xs]


@pytest.fixture
def calls(monkeypatch):
    """Names of the cells whose call() runs."""
    seen = []
    original = Cell.call

    def counting(self, *args, **kwargs):
        seen.append(self.name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Cell, "call", counting)
    return seen


@pytest.mark.parametrize("exit_index", range(CELLS))
def test_a_hard_exit_returns_the_selected_cell_and_skips_the_later_ones(hyper, calls,
                                                                        exit_index):
    layer, s0, s1, w, xs = hyper
    prev, out = layer(s0, s1, w, w, ops.one_hot(exit_index, CELLS), hard=True,
                      training=False)
    np.testing.assert_allclose(ops.convert_to_numpy(out), xs[exit_index + 1], atol=1e-5)
    assert calls == [f"cell_{k}" for k in range(exit_index + 1)]
    # Two-input rule: the next reduction cell gets x_(k-1); for k = 0 that is the
    # hyper-cell input, reduced to the cell output's size and width by `align`.
    expected = (ops.convert_to_numpy(layer.align(s1, training=False)) if exit_index == 0
                else xs[exit_index])
    np.testing.assert_allclose(ops.convert_to_numpy(prev), expected, atol=1e-5)


def test_a_soft_sample_runs_every_cell_and_mixes_the_exits(hyper, calls):
    layer, s0, s1, w, xs = hyper
    z = np.array([0.1, 0.2, 0.3, 0.4], "float32")
    prev, out = layer(s0, s1, w, w, z, hard=False, training=False)
    assert calls == [f"cell_{k}" for k in range(CELLS)]
    np.testing.assert_allclose(ops.convert_to_numpy(out),
                               sum(z[k] * xs[k + 1] for k in range(CELLS)), atol=1e-5)
    aligned = ops.convert_to_numpy(layer.align(s1, training=False))
    np.testing.assert_allclose(
        ops.convert_to_numpy(prev),
        z[0] * aligned + sum(z[k] * xs[k] for k in range(1, CELLS)), atol=1e-5)


def test_hyper_cell_config_round_trips(hyper):
    layer = hyper[0]
    assert HyperCell.from_config(layer.get_config()).get_config() == layer.get_config()


def test_temperature_schedules_anneal_from_start_to_end():
    exp = TemperatureSchedule(3.0, 0.03, "exponential")
    lin = TemperatureSchedule(3.0, 0.03, "linear")
    assert exp(0, 10) == pytest.approx(3.0) and exp(9, 10) == pytest.approx(0.03)
    assert exp(5, 11) == pytest.approx(0.3)  # geometric mean at the midpoint
    assert lin(5, 11) == pytest.approx(1.515)
    assert TemperatureSchedule(2.0, 0.5, "constant")(7, 10) == 2.0
    with pytest.raises(ValueError, match="schedule must be one of"):
        TemperatureSchedule(kind="cosine")
