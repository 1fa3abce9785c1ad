"""Cost matrices: exact per-op params and MACs, CAS differences, the latency table."""

import itertools
import json
import math

import numpy as np
import pytest

from tf_nas_seg.networks.cas_layout import CASLayout
from tf_nas_seg.networks.cas_network import (build_cas_network, cas_network_macs,
                                             count_trainable_params)
from tf_nas_seg.ops.op_set import get_op_set
from tf_nas_seg.search.cas_supernet import CASSupernet
from tf_nas_seg.search.cost_model import cas_cost_model
from tf_nas_seg.latency.table import LatencyTable, LatencyTableError, op_key
from tf_nas_seg.space.genotype import CellGenotype, Edge, Genotype

TINY = CASLayout(layout="NR", channels=4, stem_channels=8, steps=2)
OPS = get_op_set("cas_backbone").ops


@pytest.fixture(scope="module")
def supernet():
    model = CASSupernet(3, TINY, seed=0)
    model(np.zeros((1, 32, 32, 3), "float32"))
    return model


def _single_op_genotype(op):
    cell = CellGenotype("cas_backbone", ((Edge(op, 0), Edge(op, 1)),
                                         (Edge(op, 0), Edge(op, 2))), (2, 3))
    return Genotype.create("cas", {"normal": cell, "reduce": cell},
                           macro={"layout": TINY.to_json()})


@pytest.mark.parametrize("kind", ["params", "macs"])
def test_one_hot_expectation_equals_the_derived_network(supernet, kind):
    """A one-hot architecture's expected cost is the cost of the network it derives to."""
    cost = cas_cost_model(supernet, kind, 32, 32)
    rows = {"normal": [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2)]}
    kept = {(0, 0), (0, 1), (1, 0), (1, 2)}
    for op in ("conv_3x3", "sep_conv_3x3_x2", "skip_connect", "pooled_conv_3x3"):
        probs = {}
        for name in cost.matrices:
            p = np.zeros((5, len(OPS)))
            for row, edge in enumerate(rows["normal"]):
                p[row, OPS.index(op if edge in kept else "none")] = 1.0
            probs[name] = p
        net = build_cas_network(_single_op_genotype(op), 3, TINY)
        if kind == "params":
            net(np.zeros((1, 32, 32, 3), "float32"))
            # search cells have non-affine BN; derived cells learn gamma and beta
            affine = sum(w.shape[0] for w in net.trainable_weights
                         if w.path.endswith(("gamma", "beta")) and "cell_" in w.path)
            expected = (count_trainable_params(net) - affine) / 1e6
        else:
            expected = cas_network_macs(net, TINY, 32, 32) / 1e9
        assert cost.numpy(probs) == pytest.approx(expected, rel=1e-6), op


def test_expected_cost_equals_brute_force_expectation(supernet):
    """On a 3-op slice the tensor expectation equals the enumeration over all choices."""
    cost = cas_cost_model(supernet, "macs", 32, 32)
    name = next(iter(cost.matrices))
    matrix = cost.matrices[name]
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(len(OPS)), size=matrix.shape[0])
    mask = np.zeros(len(OPS))
    mask[[1, 4, 9]] = 1  # three ops, renormalised
    probs = probs * mask
    probs /= probs.sum(axis=1, keepdims=True)
    brute = 0.0
    for choice in itertools.product([1, 4, 9], repeat=matrix.shape[0]):
        p = math.prod(probs[e, o] for e, o in enumerate(choice))
        brute += p * sum(matrix[e, o] for e, o in enumerate(choice))
    other = {k: np.zeros_like(v) for k, v in cost.matrices.items() if k != name}
    got = cost.numpy({name: probs, **other}) - cost.fixed
    assert got == pytest.approx(brute, rel=1e-5)


def test_cas_mode_is_the_whole_network_difference(supernet):
    per_op = cas_cost_model(supernet, "params", 32, 32)
    cas = cas_cost_model(supernet, "params", 32, 32, mode="cas")
    identity = OPS.index("skip_connect")
    for op in range(len(OPS)):
        whole_op = sum(m[:, op].sum() for m in per_op.matrices.values())
        whole_id = sum(m[:, identity].sum() for m in per_op.matrices.values())
        for m in cas.matrices.values():
            np.testing.assert_allclose(m[:, op], whole_op - whole_id, rtol=1e-5, atol=1e-9)
    none = OPS.index("none")
    assert all(m[0, none] < 0 for m in cas.matrices.values())  # removing edges saves


def test_latency_needs_a_table_and_names_a_missing_key(supernet, tmp_path):
    with pytest.raises(LatencyTableError, match="--latency_table"):
        cas_cost_model(supernet, "latency", 32, 32)
    with pytest.raises(LatencyTableError, match="does not exist"):
        cas_cost_model(supernet, "latency", 32, 32, latency_table=str(tmp_path / "no.json"))
    path = tmp_path / "table.json"
    path.write_text(json.dumps({"schema_version": 3, "device": "cpu:test",
                                "entries": {op_key("cas_backbone", "conv_3x3", 4, 4, 8, 8,
                                                   1): 0.5}}))
    with pytest.raises(LatencyTableError, match=r"no entry 'fixed/standardize\|3\|3\|"
                                                r"32x32\|s1\|d1'.*bin/latency_table"):
        cas_cost_model(supernet, "latency", 32, 32, latency_table=str(path))
    entries = {}

    class Partial(dict):
        """Answers every key but the edge ops of one op."""

        def __missing__(self, key):
            if key.startswith("cas_backbone/skip_connect|"):
                raise KeyError(key)
            return 0.5

    table = LatencyTable(entries, {"device": "cpu:test"}, str(path))
    table.entries = Partial()
    with pytest.raises(LatencyTableError, match=r"no entry 'cas_backbone/skip_connect"
                                                r"\|4\|4\|8x8\|s1\|d1'.*bin/latency_table"):
        cas_cost_model(supernet, "latency", 32, 32, latency_table=table)


def test_latency_table_lookups_fill_the_matrices(supernet):
    class Recorder(dict):
        """Answers every key with a value derived from it and records the keys."""

        def __missing__(self, key):
            self.setdefault("_seen", []).append(key)
            return 1.0 + len(key) % 7

    entries = Recorder()
    table = LatencyTable({}, {"device": "test"})
    table.entries = entries
    cost = cas_cost_model(supernet, "latency", 32, 32, latency_table=table)
    seen = set(entries["_seen"])
    # stride-4 stem: the normal cell (C=4) sees 8x8, the reduction cell (C=8) reads 8x8
    # inputs with stride 2 and 4x4 nodes with stride 1
    assert op_key("cas_backbone", "conv_3x3", 4, 4, 8, 8, 1) in seen
    assert op_key("cas_backbone", "conv_3x3", 8, 8, 8, 8, 2) in seen
    assert op_key("cas_backbone", "conv_3x3", 8, 8, 4, 4, 1) in seen
    assert not any("/none|" in k for k in seen)
    normal = cost.matrices["alpha_normal"]
    assert normal[0, OPS.index("none")] == 0.0
    key = op_key("cas_backbone", "conv_3x3", 4, 4, 8, 8, 1)
    assert normal[0, OPS.index("conv_3x3")] == pytest.approx(1.0 + len(key) % 7)
