"""Mixed ops and cells: weighted sums, skipped none op, fixed cells from genotypes."""

import keras
import numpy as np
import pytest

from tests.layer_test_helper import run_layer_test
from tf_nas_seg.ops.op_set import get_op_set
from tf_nas_seg.space import Cell, MixedOp, MultiScaleCell, derive_cell


def test_mixed_op_with_one_hot_weights_equals_that_op():
    x = np.random.default_rng(0).normal(size=(2, 10, 12, 8)).astype("float32")
    mixed = MixedOp("cas_backbone", 8)
    ops = get_op_set("cas_backbone").ops
    k = ops.index("conv_3x3")
    one_hot = np.eye(len(ops), dtype="float32")[k]
    np.testing.assert_allclose(mixed(x, one_hot, training=False),
                               mixed.candidates[k](x, training=False), rtol=1e-5, atol=1e-6)


def test_mixed_op_never_runs_the_none_op():
    mixed = MixedOp("darts", 4)
    assert 0 not in mixed._active and mixed.candidates[0].__class__.__name__ == "Zero"
    only_none = np.eye(8, dtype="float32")[0]
    y = mixed(np.ones((1, 6, 6, 4), "float32"), only_none)
    np.testing.assert_allclose(y, 0.0)


@pytest.mark.parametrize("reduction,reduction_prev", [(False, False), (True, False),
                                                      (False, True)])
def test_search_and_fixed_cells_have_the_same_shapes(reduction, reduction_prev):
    size = 16
    s0 = np.random.rand(2, size * (2 if reduction_prev else 1), 24 * (2 if reduction_prev
                                                                      else 1), 6)
    s1 = np.random.rand(2, size, 24, 10)
    s0, s1 = s0.astype("float32"), s1.astype("float32")
    search = Cell("cas_backbone", 3, 8, reduction, reduction_prev)
    weights = np.full((9, 12), 1 / 12, "float32")
    y = search(s0, s1, weights, training=True)
    genotype = derive_cell(np.random.default_rng(2).random((9, 12)), "cas_backbone", 3)
    fixed = Cell("cas_backbone", 3, 8, reduction, reduction_prev, genotype=genotype)
    z = fixed(s0, s1, training=True)
    out = size // 2 if reduction else size
    assert tuple(y.shape) == tuple(z.shape) == (2, out, 24 * out // size, 24)
    assert len(fixed.edges) == 6 and len(search.edges) == 9
    with pytest.raises(ValueError, match="needs op_weights"):
        search(s0, s1)


def test_fixed_cell_config_round_trip_and_keras_save(tmp_path):
    genotype = derive_cell(np.random.default_rng(3).random((9, 12)), "cas_backbone", 3)
    a = keras.Input((16, 24, 6))
    b = keras.Input((16, 24, 10))
    cell = Cell("cas_backbone", 3, 8, genotype=genotype, name="cell")
    model = keras.Model([a, b], cell(a, b))
    assert Cell.from_config(cell.get_config()).genotype == genotype
    path = tmp_path / "cell.keras"
    model.save(path)
    x = [np.random.rand(1, 16, 24, 6).astype("f"), np.random.rand(1, 16, 24, 10).astype("f")]
    np.testing.assert_allclose(model.predict(x, verbose=0),
                               keras.saving.load_model(path).predict(x, verbose=0),
                               rtol=1e-5, atol=1e-5)


def test_multi_scale_cell_upsamples_high_level_input():
    ms = MultiScaleCell(steps=6, channels=8)
    low = np.random.rand(2, 16, 24, 12).astype("float32")
    high = np.random.rand(2, 4, 6, 20).astype("float32")
    y = ms(low, high, np.full((27, 10), 0.1, "float32"), training=True)
    assert tuple(y.shape) == (2, 16, 24, 48)
    # one projection per edge leaving an input (2 per node)
    assert len(ms.projections) == 12


def test_fixed_multi_scale_cell_through_layer_test(tmp_path):
    """Both inputs: the low-level map and a high-level map of half its size."""
    genotype = derive_cell(np.random.default_rng(4).random((27, 10)), "cas_multiscale", 6)
    # batch 4: the genotype holds spp_24, whose pooled map is one pixel at this size;
    # with a batch of 2 its batch norm sees two values, normalises them to -1 and +1
    # whatever the conv kernel is, and the kernel's gradient is ~0 (epsilon's share)
    run_layer_test(lambda: MultiScaleCell(channels=4, genotype=genotype),
                   [(12, 12, 6), (6, 6, 10)], (12, 12, 24), tmp_path, batch=4)


@pytest.mark.parametrize("reduction,reduction_prev", [(False, False), (True, False),
                                                      (False, True)])
def test_fixed_cell_through_layer_test(tmp_path, reduction, reduction_prev):
    genotype = derive_cell(np.random.default_rng(5).random((9, 12)), "cas_backbone", 3)
    s0 = (16, 16, 6) if reduction_prev else (8, 8, 6)
    out = (4, 4, 12) if reduction else (8, 8, 12)
    run_layer_test(lambda: Cell("cas_backbone", 3, 4, reduction, reduction_prev,
                                genotype=genotype),
                   [s0, (8, 8, 5)], out, tmp_path)
