"""AutoRTNet latency tables: what a table must hold, and the search's expected latency.

Values are reasoned about on a deterministic synthetic table with the keys of the tiny
space (a tiny measured table is noise); nothing here measures.
"""

import itertools

import keras
import numpy as np
import pytest

from tf_nas_seg.networks.autortnet_layout import AutoRTNetLayout
from tf_nas_seg.networks.autortnet_network import autortnet_network_macs
from tf_nas_seg.ops.op_set import NONE_OPS, get_op_set
from tf_nas_seg.latency import autortnet_profile
from tf_nas_seg.latency.autortnet_profile import autortnet_space
from tf_nas_seg.latency.layer_entry import dedupe
from tf_nas_seg.latency.profiles import get_profile
from tf_nas_seg.search import autortnet_supernet
from tf_nas_seg.search.autortnet_cost_model import autortnet_cost_model
from tf_nas_seg.latency.table import LatencyTable, LatencyTableError
from tf_nas_seg.space.genotype import Genotype

from tests.networks.genotypes import covering_autortnet_genotype

# Hyper-cells of 1, 3 and 2 cells: a hyper-cell that always ends at its reduction cell
# (the next one always reduces x_(-1)), one that may end at either, normal cells after
# a factorized-reduce input (cell 1) and a 1x1 input (cell 2).
LAYOUT = AutoRTNetLayout(hyper_cells=(1, 3, 2), channels=4, channel_growth=2, steps=2,
                         agg_channels=4, ms_channels=4)
H, W = 32, 48
CELL_OPS = get_op_set("autortnet_cell").ops
AGG_OPS = get_op_set("aggregation").ops


def _space(layout=LAYOUT):
    return autortnet_space(layout, 3, H, W)


def _synthetic_table(space, calibration=None):
    """Every key of the space with a deterministic, distinct value."""
    keys = {e.key for e in get_profile("autortnet").supernet_entries(space)}
    meta = {"call_overhead_ms": 0.1, "device": "synthetic"}
    if calibration:
        meta["calibration"] = calibration
    return LatencyTable({k: 0.5 + 0.25 * (sum(map(ord, k)) % 17) for k in keys}, meta,
                        "synthetic.json")


@pytest.fixture(scope="module")
def supernet():
    # The latency cost model reads only the layout and the logit names: no build.
    return autortnet_supernet.AutoRTNetSupernet(3, LAYOUT, seed=0)


def test_profile_op_sets_are_the_supernets():
    assert autortnet_profile.CELL_OP_SET == autortnet_supernet.CELL_OP_SET
    assert autortnet_profile.AGGREGATION_OP_SET == autortnet_supernet.AGGREGATION_OP_SET


def test_keys_cover_every_op_of_the_autortnet_space():
    keys = {e.key for e in get_profile("autortnet").supernet_entries(_space())}
    for op_set in ("autortnet_cell", "aggregation", "cas_multiscale"):
        ops = get_op_set(op_set).ops
        if op_set == "cas_multiscale":  # the fixed module: only its own ops
            ops = {e.op for node in autortnet_profile.DEFAULT_MULTISCALE.nodes
                   for e in node}
        for op in ops:
            found = [k for k in keys if k.startswith(f"{op_set}/{op}|")]
            assert bool(found) == (op not in NONE_OPS), f"{op_set}/{op}"
    # every cell op at every hyper-cell's reduction (stride 2) and node (stride 1) shape
    for op in CELL_OPS:
        if op in NONE_OPS:
            continue
        for c, (h, w) in ((8, (8, 12)), (16, (4, 6)), (32, (2, 3))):
            assert any(k.startswith(f"autortnet_cell/{op}|{c}|{c}|{h}x{w}|s2|")
                       for k in keys)
            node = f"{(h + 1) // 2}x{(w + 1) // 2}"  # ceil: SAME padding
            assert any(k.startswith(f"autortnet_cell/{op}|{c}|{c}|{node}|s1|")
                       for k in keys)
    # dilation is part of the key
    assert "autortnet_cell/dil_sep_conv_3x3_r4|8|8|4x6|s1|d4" in keys
    assert "aggregation/dil_sep_conv_3x3_r8_x2|4|4|4x6|s2|d8" in keys
    names = {k.split("|")[0].split("/", 1)[1] for k in keys if k.startswith("fixed/")}
    for name in ("standardize", "conv_3x3", "factorized_reduce", "conv_1x1", "add2",
                 "concat2", "concat3", "resize_to_4x6", "classifier_1x1",
                 "resize_to_32x48"):
        assert name in names, name
    # two-input rule: hyper-cell 2's reduction cell always follows a depth-1 hyper-cell
    # 1 (factorized reduce of x_(-1), the stem output); hyper-cell 3's follows a depth-1
    # hyper-cell 2 (factorized reduce of its input) or a deeper one (1x1 conv of x_(k-1))
    assert "fixed/factorized_reduce|4|16|8x12|s2|d1" in keys
    assert "fixed/factorized_reduce|16|32|4x6|s2|d1" in keys
    assert "fixed/conv_1x1|32|32|2x3|s1|d1" in keys


def test_every_derived_network_key_is_a_supernet_key():
    profile = get_profile("autortnet")
    space = _space()
    keys = {e.key for e in profile.supernet_entries(space)}
    rng = np.random.default_rng(0)
    depths = set()
    for _ in range(40):
        genotype = profile.sample_genotype(space, rng)
        depths.add(tuple(genotype.macro_dict["depths"]))
        assert not {e.key for e in profile.network_entries(space, genotype)} - keys
    # random depths, from the shallowest to the deepest
    assert (1, 1, 1) in depths and (1, 3, 2) in depths


def test_every_entry_builds_at_its_shapes():
    for entry in dedupe(get_profile("autortnet").supernet_entries(_space())):
        out = entry.factory()(*[keras.KerasTensor((1, *s)) for s in entry.input_shapes])
        assert out.shape[-1] == int(entry.key.split("|")[2]), entry.key


def _closure_layer(fn):
    for cell in fn.__closure__ or ():
        if isinstance(cell.cell_contents, keras.layers.Layer):
            return cell.cell_contents
    return None


@pytest.mark.parametrize("depths", [(2, 2, 1), (1, 3, 2), (1, 1, 1)])
def test_derived_network_entries_follow_the_network(depths):
    """Convolution MACs of the entries equal the derived network's exact MACs."""
    genotype = covering_autortnet_genotype(depths)
    layout = AutoRTNetLayout.from_json(genotype.macro_dict["layout"])
    space = autortnet_space(layout, 3, H, W)
    total = 0
    for entry in get_profile("autortnet").network_entries(space, genotype):
        fn = entry.factory()
        fn(*[keras.KerasTensor((1, *s)) for s in entry.input_shapes])
        layer = getattr(fn, "__self__", None) or _closure_layer(fn)
        if layer is not None and hasattr(layer, "count_macs"):
            total += layer.count_macs(entry.input_shapes[0])
        elif isinstance(layer, keras.layers.Conv2D):
            h, w, c = entry.input_shapes[0]
            total += h * w * c * layer.filters
    assert total == autortnet_network_macs(genotype, 3, H, W)


def _one_hot(genotype, supernet):
    """Probabilities selecting the genotype: its ops (zero on dropped edges), depths."""
    probs = {}
    depths = genotype.macro_dict["depths"]
    for h in range(len(depths)):
        for name, logits in ((f"reduce_{h + 1}", supernet.alpha_reduce[h]),
                             (f"normal_{h + 1}", supernet.alpha_normal[h])):
            cell = genotype.cell(name)
            rows = [(j, i) for j in range(len(cell.nodes)) for i in range(j + 2)]
            p = np.zeros((len(rows), len(CELL_OPS)))
            for r, (j, i) in enumerate(rows):
                kept = {e.source: e.op for e in cell.nodes[j]}
                p[r, CELL_OPS.index(kept.get(i, "zero"))] = 1.0
            probs[logits.name] = p
        probs[supernet.betas[h].name] = np.eye(LAYOUT.hyper_cells[h])[depths[h] - 1]
    return probs


def _aggregation_ms(cost, genotype):
    ops = genotype.macro_dict["aggregation"]["ops"]
    return sum(cost.aggregation_matrix[e, AGG_OPS.index(o)] for e, o in enumerate(ops))


@pytest.mark.parametrize("calibration", [None, {"scale": 1.25, "offset_ms": 3.0}])
def test_one_hot_expectation_is_the_derived_network_prediction(supernet, calibration):
    """eq. 4/7 with one-hot alphas and betas = the table's sum over the derived network
    (the aggregation ops, outside the loss, added back); `cost_of` is that prediction."""
    profile = get_profile("autortnet")
    space = _space()
    table = _synthetic_table(space, calibration)
    cost = autortnet_cost_model(supernet, "latency", H, W, latency_table=table)
    rng = np.random.default_rng(1)
    for _ in range(8):
        genotype = profile.sample_genotype(space, rng)
        predicted = table.predict([e.key for e in profile.network_entries(space, genotype)])
        probs = _one_hot(genotype, supernet)
        expected = cost.numpy(probs) + _aggregation_ms(cost, genotype)
        # Both sides are float64 NumPy sums of the same table values (one-hot weights),
        # no TensorFlow kernel involved: only summation order differs, so tight is right.
        assert expected == pytest.approx(predicted, rel=1e-7)
        assert cost.cost_of(genotype) == pytest.approx(predicted, rel=1e-7)
        tensor = cost({k: keras.ops.convert_to_tensor(v, "float32")
                       for k, v in probs.items()})
        assert float(tensor) + _aggregation_ms(cost, genotype) == pytest.approx(
            predicted, rel=1e-5)


def _with_depths(genotype, depths):
    data = genotype.to_json()
    data["macro"]["depths"] = list(depths)
    return Genotype.from_json(data)


def test_expected_latency_equals_brute_force_over_exit_choices(supernet):
    """sum_k P(kept_k) LAT(cell_k) = E over sampled exits of the derived network's sum,
    the preprocessing the two-input rule changes included."""
    profile = get_profile("autortnet")
    space = _space()
    table = _synthetic_table(space)
    cost = autortnet_cost_model(supernet, "latency", H, W, latency_table=table)
    rng = np.random.default_rng(2)
    genotype = profile.sample_genotype(space, rng)
    probs = _one_hot(genotype, supernet)
    exits = [rng.dirichlet(np.ones(n)) for n in LAYOUT.hyper_cells]
    for beta, p in zip(supernet.betas, exits):
        probs[beta.name] = p
    brute = 0.0
    for depths in itertools.product(*[range(1, n + 1) for n in LAYOUT.hyper_cells]):
        p = np.prod([e[d - 1] for e, d in zip(exits, depths)])
        network = _with_depths(genotype, depths)
        brute += p * table.predict([e.key for e in profile.network_entries(space,
                                                                             network)])
    expected = cost.numpy(probs) + _aggregation_ms(cost, genotype)
    assert expected == pytest.approx(brute, rel=1e-7)
    # the op expectation is linear per edge: mixing two one-hot cells mixes their costs
    other = _one_hot(profile.sample_genotype(space, rng), supernet)
    name = supernet.alpha_normal[0].name
    mixed = {**probs, name: 0.3 * probs[name] + 0.7 * other[name]}
    assert cost.numpy(mixed) == pytest.approx(
        0.3 * cost.numpy(probs) + 0.7 * cost.numpy({**probs, name: other[name]}),
        rel=1e-7)


def test_a_table_miss_names_the_key_and_the_command(supernet):
    table = _synthetic_table(_space())
    key = "autortnet_cell/dil_sep_conv_3x3_r2|16|16|2x3|s1|d2"
    del table.entries[key]
    with pytest.raises(LatencyTableError, match=r"dil_sep_conv_3x3_r2\|16\|16\|2x3\|s1\|d2"
                       r".*bin/latency_table --mode=build"):
        autortnet_cost_model(supernet, "latency", H, W, latency_table=table)
    # a table of another resolution misses too, rather than being read at wrong shapes
    with pytest.raises(LatencyTableError, match="bin/latency_table"):
        autortnet_cost_model(supernet, "latency", 64, 96,
                             latency_table=_synthetic_table(_space()))
