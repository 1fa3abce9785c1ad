"""AutoRTNet supernet: expected cost against brute force over exits, derivation from
hand-set logits, the cost term's pull towards shallow networks, the FBNet loss form."""

import itertools
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from tf_nas_seg.networks.autortnet_layout import AutoRTNetLayout
from tf_nas_seg.networks.autortnet_network import (autortnet_network_macs,
                                                   build_autortnet_network)
from tf_nas_seg.ops.op_set import get_op_set
from tf_nas_seg.search.autortnet_cost_model import autortnet_cost_model
from tf_nas_seg.search.autortnet_supernet import AutoRTNetSupernet
from tf_nas_seg.space.genotype import Genotype

LAYOUT = AutoRTNetLayout(hyper_cells=(2, 3, 2), channels=4, channel_growth=2, steps=2,
                         agg_channels=4, ms_channels=4)
CELL_OPS = get_op_set("autortnet_cell").ops
H = W = 32


@pytest.fixture(scope="module")
def supernet():
    model = AutoRTNetSupernet(3, LAYOUT, seed=0)
    model(np.zeros((1, H, W, 3), "float32"), training=False)
    return model


def _one_hot_alphas(model, rng):
    """Near one-hot op logits; node 1's third edge is 'zero', so the DARTS top-2 rule
    keeps exactly the edges that carry cost (the supernet cost then equals the derived
    network's)."""
    for logits in model.alpha_reduce + model.alpha_normal:
        values = np.full(tuple(logits.shape), -30.0, "float32")
        choice = rng.integers(1, len(CELL_OPS), size=values.shape[0])
        values[np.arange(values.shape[0]), choice] = 30.0
        values[4] = -30.0
        values[4, 0] = 30.0  # edge (node 1, source 2) -> zero
        logits.assign(values)


def _probabilities(model):
    """softmax of each logit vector in float64, so that comparisons with a float64 brute
    force do not depend on how one CPU's float32 kernels round."""
    probs = {}
    for v in model.arch_variables:
        logits = ops.convert_to_numpy(v).astype(np.float64)
        e = np.exp(logits - logits.max(axis=-1, keepdims=True))
        probs[v.name] = e / e.sum(axis=-1, keepdims=True)
    return probs


def _with_depths(genotype, depths):
    data = genotype.to_json()
    data["macro"]["depths"] = list(depths)
    return Genotype.from_json(data)


def test_expected_macs_equal_brute_force_over_exit_choices(supernet):
    rng = np.random.default_rng(1)
    _one_hot_alphas(supernet, rng)
    for beta in supernet.betas:
        beta.assign(rng.normal(size=tuple(beta.shape)).astype("float32"))
    cost = autortnet_cost_model(supernet, "macs", H, W)
    probs = _probabilities(supernet)
    genotype = supernet.derive()
    exit_probs = [probs[b.name] for b in supernet.betas]
    brute = 0.0
    for depths in itertools.product(*[range(1, n + 1) for n in LAYOUT.hyper_cells]):
        p = np.prod([e[d - 1] for e, d in zip(exit_probs, depths)])
        macs = autortnet_network_macs(_with_depths(genotype, depths), 3, H, W,
                                      include_aggregation_edges=False)
        brute += p * macs / 1e9
    # Both sides are float64 NumPy sums of exact integer MACs: tight is right here.
    assert cost.numpy(probs) == pytest.approx(brute, rel=1e-7)
    # The tensor expression the search differentiates gives the same number.
    tensor = {k: ops.convert_to_tensor(v, "float32") for k, v in probs.items()}
    assert float(cost(tensor)) == pytest.approx(brute, rel=1e-5)
    # And the cost predicted for the derived network is that network's MACs.
    assert cost.cost_of(genotype) * 1e9 == pytest.approx(autortnet_network_macs(
        genotype, 3, H, W, include_aggregation_edges=False))


def test_derivation_reproduces_hand_set_depths_and_ops(supernet):
    rng = np.random.default_rng(2)
    _one_hot_alphas(supernet, rng)
    wanted = (2, 1, 2)
    for beta, depth in zip(supernet.betas, wanted):
        values = np.zeros(tuple(beta.shape), "float32")
        values[depth - 1] = 5.0
        beta.assign(values)
    agg_ops = get_op_set("aggregation").ops
    agg = np.zeros(tuple(supernet.alpha_aggregation.shape), "float32")
    agg[np.arange(agg.shape[0]), np.arange(agg.shape[0]) % len(agg_ops)] = 3.0
    supernet.alpha_aggregation.assign(agg)
    genotype = Genotype.from_json(json.loads(json.dumps(supernet.derive().to_json())))
    macro = genotype.macro_dict
    assert genotype.method == "autortnet" and macro["depths"] == list(wanted)
    assert macro["aggregation"]["ops"] == [agg_ops[i % len(agg_ops)]
                                           for i in range(agg.shape[0])]
    logits = ops.convert_to_numpy(supernet.alpha_reduce[0])
    node0 = genotype.cell("reduce_1").nodes[0]
    assert [e.op for e in node0] == [CELL_OPS[int(np.argmax(logits[i]))] for i in (0, 1)]
    assert all(e.source != 2 for e in genotype.cell("normal_2").nodes[1])  # 'zero' edge
    # The derived network has exactly these depths, wired by the two-input rule.
    net = build_autortnet_network(genotype, 3)
    cells = [layer for layer in net.layers if layer.name.startswith("hyper_cell_")]
    names = [layer.name for layer in cells]
    assert names == ["hyper_cell_1_cell_0", "hyper_cell_1_cell_1", "hyper_cell_2_cell_0",
                     "hyper_cell_3_cell_0", "hyper_cell_3_cell_1"]
    # Reduction cells read a twice-larger x_(k-1) exactly when the previous hyper-cell
    # stopped at its reduction cell (hyper-cell 2 has depth 1).
    assert [c.reduction_prev for c in cells] == [True, True, False, True, True]
    logits_out = net(np.full((1, 40, 24, 3), 128.0, "float32"))
    assert tuple(logits_out.shape) == (1, 40, 24, 3)
    # The supernet at inference takes the argmax exits, i.e. the same depths.
    assert supernet.depth_record()["depth_2"] == 1


def test_the_cost_term_alone_drives_the_exits_to_shallower_cheaper_networks(supernet):
    # lambda = 0 leaves the logits where they are; a large lambda descends the cost.
    rng = np.random.default_rng(3)
    for v in supernet.arch_variables:
        v.assign(rng.normal(scale=1e-3, size=tuple(v.shape)).astype("float32"))
    cost = autortnet_cost_model(supernet, "macs", H, W)
    free = supernet.derive()
    supernet.cost_model = cost
    adam = keras.optimizers.Adam(0.05)
    for _ in range(60):
        _, grads = supernet._cost_and_grads()
        adam.apply([1.0 * g for g in grads], supernet.arch_variables)
    cheap = supernet.derive()
    supernet.cost_model = None
    assert sum(cheap.macro_dict["depths"]) < sum(free.macro_dict["depths"])
    assert cheap.macro_dict["depths"] == [1, 1, 1]
    assert cost.cost_of(cheap) < cost.cost_of(free)


def test_beta_stays_frozen_in_its_warm_up(supernet):
    supernet.set_arch_group_trainable("beta", False)
    assert not supernet.arch_group_trainable("beta")
    grads = [tf.ones_like(v) for v in supernet.arch_variables]
    scaled = [g * supernet._arch_group_scale[supernet._arch_group_of[id(v)]]
              if id(v) in supernet._arch_group_of else g
              for g, v in zip(grads, supernet.arch_variables)]
    frozen = {v.name for v, g in zip(supernet.arch_variables, scaled)
              if not np.any(ops.convert_to_numpy(g))}
    assert frozen == {b.name for b in supernet.betas}
    supernet.set_arch_group_trainable("beta", True)
    with pytest.raises(ValueError, match="no architecture logits in group"):
        supernet.set_arch_group_trainable("gamma", True)


def test_fbnet_form_gradient_matches_autodiff(supernet):
    supernet.cost_lambda, supernet.cost_form, supernet.cost_exponent = 0.2, "fbnet", 0.6
    supernet.cost_model = object()  # any non-None model selects the FBNet branch
    ce, cost = tf.constant(1.7), tf.Variable(12.0)
    _check_combine(supernet, lambda x: ce * tf.reduce_sum(tf.exp(x)),
                   lambda x: cost * tf.reduce_sum(tf.exp(2 * x)),
                   lambda ce_x, cost_x: ce_x * 0.2 * tf.math.log(cost_x) ** 0.6)


def _check_combine(supernet, ce_of, cost_of, reference_of):
    """supernet._combine's loss and gradient against a loss written out in TensorFlow
    (x stands for the architecture logits); returns the combined and the CE gradients."""
    x = tf.Variable([0.3, -0.2])
    with tf.GradientTape(persistent=True) as tape:
        ce_x, cost_x = ce_of(x), cost_of(x)
        reference = reference_of(ce_x, cost_x)
    loss, grads = supernet._combine(ce_x, [tape.gradient(ce_x, x)], cost_x,
                                    [tape.gradient(cost_x, x)])
    supernet.cost_model, supernet.cost_form = None, "additive"
    np.testing.assert_allclose(float(loss), float(reference), rtol=1e-6)
    np.testing.assert_allclose(grads[0].numpy(), tape.gradient(reference, x).numpy(),
                               rtol=1e-5)
    return grads[0].numpy(), tape.gradient(ce_x, x).numpy()


@pytest.mark.parametrize("cost_value, over", [(12.0, True), (9.0, False)])
def test_budget_form_pushes_only_over_the_target(supernet, cost_value, over):
    supernet.cost_lambda, supernet.cost_form, supernet.cost_target = 0.3, "budget", 10.0
    supernet.cost_model = object()  # any non-None model selects the budget branch
    start = tf.reduce_sum(tf.exp(2 * tf.constant([0.3, -0.2])))
    combined, ce_grad = _check_combine(
        supernet, lambda x: 1.7 * tf.reduce_sum(tf.exp(x)),
        lambda x: cost_value * tf.reduce_sum(tf.exp(2 * x)) / start,
        lambda ce_x, cost_x: ce_x + 0.3 * tf.maximum(cost_x - 10.0, 0.0))
    # Under the budget the cost adds nothing: the cross-entropy alone decides.
    assert np.allclose(combined, ce_grad) != over


@pytest.mark.parametrize("cost_value, over", [(12.0, True), (9.0, False)])
def test_target_form_pulls_towards_the_target_from_both_sides(supernet, cost_value, over):
    supernet.cost_lambda, supernet.cost_form, supernet.cost_target = 0.3, "target", 10.0
    supernet.cost_model = object()  # any non-None model selects the target branch
    start = tf.reduce_sum(tf.exp(2 * tf.constant([0.3, -0.2])))
    combined, ce_grad = _check_combine(
        supernet, lambda x: 1.7 * tf.reduce_sum(tf.exp(x)),
        lambda x: cost_value * tf.reduce_sum(tf.exp(2 * x)) / start,
        lambda ce_x, cost_x: ce_x + 0.3 * tf.abs(cost_x - 10.0))
    # d cost / d x > 0 here: over the target the cost adds to the gradient (towards
    # cheaper), under it the cost subtracts (towards dearer); it always acts.
    assert np.all(combined > ce_grad) == over
    assert np.all(combined < ce_grad) != over


def test_bad_autortnet_settings_say_what_to_change():
    from tf_nas_seg.search.search_config import SearchConfig

    with pytest.raises(ValueError, match="three comma-separated cell counts"):
        SearchConfig(method="autortnet", hyper_cells="5,10")
    with pytest.raises(ValueError, match="use --cost_mode=per_op"):
        SearchConfig(method="autortnet", cost_mode="cas")
    with pytest.raises(ValueError, match="anneals downwards"):
        SearchConfig(temperature_start=0.1, temperature_end=1.0)
    with pytest.raises(ValueError, match="--cost_form=budget needs a --cost"):
        SearchConfig(cost="latency", cost_form="budget")
    with pytest.raises(ValueError, match="--cost_form=budget needs a --cost"):
        SearchConfig(cost="none", cost_form="budget", cost_target=20.0)
    with pytest.raises(ValueError, match="--cost_form=target needs a --cost"):
        SearchConfig(cost="latency", cost_form="target")
    with pytest.raises(Exception, match="method 'autortnet'"):
        build_autortnet_network(_cas_genotype(), 3)


def _cas_genotype():
    cell = {"op_set": "cas_backbone", "nodes": [[["conv_3x3", 0], ["conv_3x3", 1]]],
            "concat": [2]}
    return Genotype.from_json({"schema_version": 1, "method": "cas",
                               "cells": {"normal": cell, "reduce": cell}})


@pytest.mark.slow  # traces a second supernet (about a minute on 2 busy cores)
def test_a_hyper_cell_of_one_cell_searches():
    # Its shared normal-cell logits are never read; their gradient is zero, not an error.
    layout = AutoRTNetLayout(hyper_cells=(1, 2, 1), channels=4, channel_growth=2, steps=1,
                             agg_channels=4, ms_channels=4)
    model = AutoRTNetSupernet(3, layout, seed=0)
    model(np.zeros((1, H, W, 3), "float32"), training=False)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (2, H, W, 3)).astype("float32")
    labels = rng.integers(0, 3, (2, H, W)).astype("int32")
    ce, _, weight_grads, arch_grads = model._loss_and_grads(images, labels)
    assert np.isfinite(float(ce))
    unused = [g for g, v in zip(arch_grads, model.arch_variables)
              if v.name == model.alpha_normal[0].name]
    assert unused and not np.any(ops.convert_to_numpy(unused[0]))
    assert any(np.any(ops.convert_to_numpy(g)) for g in weight_grads)
