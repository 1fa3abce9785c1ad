"""The search's expected latency (SPEC section 2) read from a measured table."""

import itertools
import math

import keras
import numpy as np
import pytest

from tf_nas_seg.ops.op_set import get_op_set
from tf_nas_seg.latency.profiles import get_profile
from tf_nas_seg.search.cas_supernet import CASSupernet
from tf_nas_seg.search.cost_model import cas_cost_model, expected_hypercell_latency
from tf_nas_seg.latency.table import LatencyTable, network_key
from tf_nas_seg.space.genotype import CellGenotype, Edge, Genotype

from tests.latency.helpers import TINY_LAYOUT, synthetic_table, tiny_space

OPS = get_op_set("cas_backbone").ops
MS_OPS = get_op_set("cas_multiscale").ops


@pytest.fixture(scope="module")
def backbone_supernet():
    model = CASSupernet(3, TINY_LAYOUT, seed=0)
    model(np.zeros((1, 32, 48, 3), "float32"))
    return model


def _one_hot(genotype, cell_type, ops):
    """Probabilities selecting the genotype's ops, `none` on the dropped edges."""
    steps = len(genotype.cell(cell_type).nodes)
    rows = [(j, i) for j in range(steps) for i in range(j + 2)]
    p = np.zeros((len(rows), len(ops)))
    for r, (j, i) in enumerate(rows):
        kept = {e.source: e.op for e in genotype.cell(cell_type).nodes[j]}
        p[r, ops.index(kept.get(i, "none"))] = 1.0
    return p


def test_one_hot_expectation_is_the_derived_network_prediction(tiny_table,
                                                               backbone_supernet):
    """eq. 4/5 with one-hot weights = the table's sum over the derived network."""
    profile = get_profile("cas")
    cost = cas_cost_model(backbone_supernet, "latency", 32, 48, latency_table=tiny_table)
    space = tiny_space(multiscale=False)
    rng = np.random.default_rng(1)
    for _ in range(5):
        genotype = profile.sample_genotype(space, rng)
        probs = {v.name: _one_hot(genotype, t, OPS)
                 for t, (v, _, _) in backbone_supernet.cell_logits().items()}
        keys = [e.key for e in profile.network_entries(space, genotype)]
        assert cost.numpy(probs) == pytest.approx(tiny_table.predict(keys), rel=1e-6)


def test_expected_latency_equals_brute_force_expectation(tiny_table, backbone_supernet):
    """Exact enumeration of every architecture of a 3-op slice of the normal cell."""
    cost = cas_cost_model(backbone_supernet, "latency", 32, 48, latency_table=tiny_table)
    name = backbone_supernet.alpha_normal.name
    matrix = cost.matrices[name]
    choices = [OPS.index(o) for o in ("skip_connect", "sep_conv_3x3_x4", "conv_3x3")]
    rng = np.random.default_rng(0)
    probs = np.zeros_like(matrix)
    probs[:, choices] = rng.dirichlet(np.ones(3), size=matrix.shape[0])
    other = {k: np.eye(len(OPS))[np.zeros(v.shape[0], int) + OPS.index("conv_3x3")]
             for k, v in cost.matrices.items() if k != name}
    fixed = cost.fixed + sum(float(np.sum(cost.matrices[k] * p)) for k, p in other.items())
    brute = 0.0
    for arch in itertools.product(choices, repeat=matrix.shape[0]):
        p = math.prod(probs[e, o] for e, o in enumerate(arch))
        brute += p * (fixed + sum(matrix[e, o] for e, o in enumerate(arch)))
    assert cost.numpy({name: probs, **other}) == pytest.approx(brute, rel=1e-6)
    # and a tensor expectation (the search's) equals the NumPy one
    tensor = cost({k: keras.ops.convert_to_tensor(v, "float32")
                   for k, v in {name: probs, **other}.items()})
    assert float(tensor) == pytest.approx(brute, rel=1e-5)


def test_multiscale_stage_reads_fixed_backbone_and_projections(tiny_table):
    tiny_table = synthetic_table(tiny_table)
    cell = CellGenotype("cas_backbone", ((Edge("conv_3x3", 0), Edge("skip_connect", 1)),
                                         (Edge("max_pool_3x3", 0), Edge("conv_3x3", 2))),
                        (2, 3))
    backbone = Genotype.create("cas", {"normal": cell, "reduce": cell},
                               macro={"layout": TINY_LAYOUT.to_json()})
    model = CASSupernet(3, TINY_LAYOUT, stage="multiscale", backbone_genotype=backbone)
    model(np.zeros((1, 32, 48, 3), "float32"))
    cost = cas_cost_model(model, "latency", 32, 48, latency_table=tiny_table)
    matrix = cost.matrices[model.alpha_multiscale.name]
    assert cost.fixed > tiny_table.network_overhead_ms
    # rows 0-3 leave the inputs: their 1x1 projection is paid whatever the op
    projection = tiny_table.lookup("fixed/conv_1x1|8|8|8x12|s1|d1")
    skip = MS_OPS.index("skip_connect")
    assert matrix[0, skip] == pytest.approx(
        projection + tiny_table.lookup("cas_multiscale/skip_connect|8|8|8x12|s1|d1"),
        rel=1e-5)
    assert matrix[4, skip] == pytest.approx(  # row 4: node 1 <- node 0
        tiny_table.lookup("cas_multiscale/skip_connect|8|8|8x12|s1|d1"), rel=1e-5)


def test_cas_mode_reads_whole_network_differences(tiny_table, backbone_supernet):
    """c_o = c'_o - c'_id from the whole-network entries, the same on every edge."""
    from tf_nas_seg.latency.cas_profile import layout_signature

    table = LatencyTable(dict(tiny_table.entries), dict(tiny_table.meta))
    signature = layout_signature(TINY_LAYOUT, 3)
    for i, op in enumerate(OPS):
        table.entries[network_key("cas_backbone", op, signature, 32, 48)] = 10.0 + i
    cost = cas_cost_model(backbone_supernet, "latency", 32, 48, mode="cas",
                          latency_table=table)
    for matrix in cost.matrices.values():
        expected = np.arange(len(OPS)) - OPS.index("skip_connect")
        np.testing.assert_allclose(matrix, np.tile(expected, (matrix.shape[0], 1)))
    del table.entries[network_key("cas_backbone", "none", signature, 32, 48)]
    with pytest.raises(ValueError, match="network/cas_backbone/none.*--mode=network"):
        cas_cost_model(backbone_supernet, "latency", 32, 48, mode="cas",
                       latency_table=table)


def test_hypercell_expectation_equals_brute_force_over_sampled_depths():
    """eq. 7: E[sum of kept cells] over sampled output edges = sum_k P(kept_k) LAT_k."""
    rng = np.random.default_rng(0)
    latencies = rng.uniform(1.0, 5.0, size=6)
    depth = rng.dirichlet(np.ones(6))
    expected = float(expected_hypercell_latency(keras.ops.convert_to_tensor(latencies),
                                                keras.ops.convert_to_tensor(depth)))
    exact = sum(depth[k] * latencies[:k + 1].sum() for k in range(6))
    assert expected == pytest.approx(exact, rel=1e-6)
    samples = rng.choice(6, size=200000, p=depth)
    monte_carlo = np.mean(np.cumsum(latencies)[samples])
    assert expected == pytest.approx(monte_carlo, rel=0.01)


def test_calibrated_table_scales_the_expectation(tiny_table, backbone_supernet):
    from tf_nas_seg.latency.table import LatencyTable

    calibrated = LatencyTable(tiny_table.entries, {**tiny_table.meta, "calibration": {
        "scale": 1.25, "offset_ms": 3.0}})
    plain = cas_cost_model(backbone_supernet, "latency", 32, 48, latency_table=tiny_table)
    scaled = cas_cost_model(backbone_supernet, "latency", 32, 48, latency_table=calibrated)
    assert scaled.fixed == pytest.approx(3.0 + 1.25 * plain.fixed, rel=1e-6)
    for name, matrix in plain.matrices.items():
        np.testing.assert_allclose(scaled.matrices[name], 1.25 * matrix, rtol=1e-6)
