"""The bilevel step: disjoint variable lists, each touched only by its own optimizer."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_nas_seg.networks.cas_layout import CASLayout
from tf_nas_seg.search.cas_supernet import CASSupernet
from tf_nas_seg.search.cost_model import cas_cost_model
from tf_nas_seg.losses import masked_cross_entropy

TINY = CASLayout(layout="NR", channels=4, stem_channels=8, steps=2)


def _model(**kwargs):
    model = CASSupernet(3, TINY, seed=1, **kwargs)
    model(np.zeros((1, 16, 16, 3), "float32"))
    return model


def _batch(seed):
    rng = np.random.default_rng(seed)
    return (tf.constant((rng.random((2, 16, 16, 3)) * 255).astype("float32")),
            tf.constant(rng.integers(0, 3, (2, 16, 16)).astype("int32")))


def _snapshot(variables):
    return [np.array(v.numpy()) for v in variables]


def test_variable_lists_are_disjoint_and_complete():
    model = _model()
    arch = {id(v) for v in model.arch_variables}
    weights = {id(v) for v in model.weight_variables}
    assert len(arch) == 2 and not arch & weights
    assert arch | weights == {id(v) for v in model.trainable_variables}


@pytest.mark.parametrize("second_order", [
    False, pytest.param(True, marks=pytest.mark.slow)])  # second order: ~10 s more, idle
def test_each_optimizer_touches_only_its_own_variables(second_order):
    model = _model()
    model.configure_search(keras.optimizers.SGD(0.1, momentum=0.9),
                           keras.optimizers.Adam(0.01), second_order=second_order)
    w_batch, a_batch = _batch(0), _batch(1)
    weights0, arch0 = _snapshot(model.weight_variables), _snapshot(model.arch_variables)
    model.arch_step(w_batch, a_batch)
    assert all(np.array_equal(a, b) for a, b in zip(weights0,
                                                     _snapshot(model.weight_variables)))
    arch1 = _snapshot(model.arch_variables)
    assert all(not np.array_equal(a, b) for a, b in zip(arch0, arch1))
    model.weight_step(w_batch)
    assert all(np.array_equal(a, b) for a, b in zip(arch1, _snapshot(model.arch_variables)))
    changed = [not np.array_equal(a, b)
               for a, b in zip(weights0, _snapshot(model.weight_variables))]
    assert sum(changed) > 0.9 * len(changed)
    # the optimizers' own slots cover exactly their variable lists
    assert model.arch_optimizer.iterations.numpy() == 1
    assert model.weight_optimizer.iterations.numpy() == 1


def test_train_step_in_a_tf_function_reports_metrics_and_learns():
    model = _model()
    model.configure_search(keras.optimizers.SGD(0.05, momentum=0.9),
                           keras.optimizers.Adam(3e-3))
    batch = _batch(2)
    step = tf.function(lambda w, a: model.train_step((w, a)))
    first = step(batch, batch)
    for _ in range(30):
        logs = step(batch, batch)
    assert set(logs) == {"weight_loss", "arch_loss", "arch_ce", "expected_cost",
                         "arch_miou"}
    assert float(masked_cross_entropy(batch[1], model(batch[0], training=True))) < float(
        first["weight_loss"])


def test_cost_term_pushes_the_architecture_towards_cheap_ops():
    model = _model()
    cost = cas_cost_model(model, "params", 16, 16)
    model.configure_search(keras.optimizers.SGD(0.0), keras.optimizers.Adam(0.1),
                           cost_model=cost, cost_lambda=1000.0, arch_weight_decay=0.0)
    before = float(model.expected_cost()) - cost.fixed
    batch = _batch(3)
    step = tf.function(lambda w, a: model.arch_step(w, a))
    for _ in range(50):
        step(batch, batch)
    assert float(model.expected_cost()) - cost.fixed < 0.5 * before


def test_masked_cross_entropy_ignores_the_ignore_label():
    logits = tf.constant(np.random.default_rng(0).normal(size=(1, 2, 2, 3)), tf.float32)
    labels = tf.constant([[[0, 255], [2, 255]]])
    loss = masked_cross_entropy(labels, logits)
    manual = -np.mean([tf.nn.log_softmax(logits[0, 0, 0])[0].numpy(),
                       tf.nn.log_softmax(logits[0, 1, 0])[2].numpy()])
    np.testing.assert_allclose(loss, manual, rtol=1e-5)
    assert float(masked_cross_entropy(tf.fill((1, 2, 2), 255), logits)) == 0.0


def test_every_search_model_keeps_the_contract():
    """derive and cell_logits are abstract: a supernet without them cannot be built."""
    from tf_nas_seg.search.bilevel_search_model import BilevelSearchModel
    from tf_nas_seg.search.darts_supernet import DartsSupernet

    with pytest.raises(TypeError, match="abstract"):
        BilevelSearchModel(num_classes=3)
    darts = DartsSupernet(num_classes=10, channels=4, num_cells=3, steps=2)
    genotype = darts.derive()
    assert genotype.method == "darts"
    assert [len(genotype.cell(t).nodes) for t in ("normal", "reduce")] == [2, 2]
    assert set(darts.arch_panels()) == {"normal", "reduce"}


@pytest.mark.parametrize("running_stats", [
    False, pytest.param(True, marks=pytest.mark.slow)])  # True: ~7 s more, idle
def test_configure_search_sets_running_stats_of_every_batch_norm(running_stats):
    from tf_nas_seg.ops.batch_norm import BatchNorm

    model = _model()
    model.configure_search(keras.optimizers.SGD(0.1), keras.optimizers.Adam(0.01),
                           bn_running_stats=running_stats)
    layers = [la for la in model._flatten_layers() if isinstance(la, BatchNorm)]
    assert len(layers) > 10
    assert {la.track_running_stats for la in layers} == {running_stats}
    stats = [v for la in layers for v in (la.moving_mean, la.moving_variance)]
    # what the search's checkpoints leave out: the statistics no step reads or writes
    unused = {id(v) for v in model.unused_variables()}
    assert unused == (set() if running_stats else {id(v) for v in stats})
    before = _snapshot(stats)
    model.train_step((_batch(0), _batch(1)))
    moved = [not np.array_equal(a, b) for a, b in zip(before, _snapshot(stats))]
    assert any(moved) == running_stats


@pytest.mark.parametrize("optimizer", ["fused_sgd", "keras_sgd"])
@pytest.mark.parametrize("clip_fraction", [0.5, 1e3])  # of the first norm: clipped, not
def test_weight_step_is_clipped_decayed_sgd_with_momentum(optimizer, clip_fraction):
    """Two weight steps against NumPy: g + wd * w, scaled by min(1, clip / global norm)
    (FusedSGD folds the scale into its learning rate), then SGD with momentum."""
    from tf_nas_seg.utils.fused_sgd import FusedSGD

    lr, momentum, decay = 0.1, 0.9, 3e-2
    sgd = FusedSGD if optimizer == "fused_sgd" else keras.optimizers.SGD
    model = _model()
    model.configure_search(sgd(lr, momentum=momentum), keras.optimizers.Adam(0.01),
                           weight_decay=decay)
    batch = _batch(0)
    weights = model.weight_variables
    velocity = [np.zeros(v.shape, "float64") for v in weights]
    for step in range(2):
        before = _snapshot(weights)
        grads = [np.asarray(g, "float64") for g in model._loss_and_grads(*batch)[2]]
        grads = [g + decay * w for g, w in zip(grads, before)]
        norm = np.sqrt(sum(np.sum(g * g) for g in grads))
        model.grad_clip_norm = clip_fraction * norm  # (the step reads it at each call)
        scale = min(1.0, model.grad_clip_norm / norm)
        assert (scale < 1.0) == (clip_fraction < 1.0)  # the clip is (not) active as meant
        velocity = [momentum * m - lr * scale * g for m, g in zip(velocity, grads)]
        model.weight_step(batch)
        for w, w0, m in zip(_snapshot(weights), before, velocity):
            # float32 updates against float64: a few ulps of the weights
            np.testing.assert_allclose(w - w0, m, rtol=1e-3,
                                       atol=8 * np.spacing(np.abs(w0).max()))


@pytest.mark.slow  # two eager supernet steps (~15 s idle)
def test_search_updates_do_not_depend_on_running_stats():
    """The steps normalise with batch statistics: the moving ones are never read."""
    results = []
    for running_stats in (False, True):
        keras.utils.set_random_seed(3)
        model = _model()
        model.configure_search(keras.optimizers.SGD(0.1, momentum=0.9),
                               keras.optimizers.Adam(0.01), bn_running_stats=running_stats)
        # one step: the architecture half updates the moving statistics (when kept)
        # before the weight half runs, so a read of them would already show
        model.train_step((_batch(0), _batch(1)))
        results.append(_snapshot(model.weight_variables + model.arch_variables))
    # Same ops on the same machine: equal up to the float32 rounding that multithreaded
    # kernels may reorder; reading the moving statistics would change them at 1e-1.
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _supernets():
    from tf_nas_seg.networks.autortnet_layout import AutoRTNetLayout
    from tf_nas_seg.search.autortnet_supernet import AutoRTNetSupernet
    from tf_nas_seg.search.darts_supernet import DartsSupernet

    return {"cas": lambda: CASSupernet(3, TINY, seed=1),
            "autortnet": lambda: AutoRTNetSupernet(3, AutoRTNetLayout(
                hyper_cells=(2, 3, 2), channels=4, channel_growth=2, steps=2,
                agg_channels=4, ms_channels=4), seed=0),
            "darts": lambda: DartsSupernet(num_classes=3, channels=4, num_cells=3,
                                           steps=2)}


@pytest.mark.parametrize("kind", [
    "cas", "darts", pytest.param("autortnet", marks=pytest.mark.slow)])  # ~9 s, idle
def test_build_creates_the_weights_keras_symbolic_build_creates(kind, monkeypatch):
    """`build` (one eager pass) gives the same variables, in the same order, with the
    same initial values, as Keras's default build of a subclassed model (a symbolic
    trace of `call`, then the call), and works when the first call is traced."""
    from tf_nas_seg.search.bilevel_search_model import BilevelSearchModel

    make = _supernets()[kind]
    images = np.zeros((1, 32, 32, 3), "float32")
    keras.utils.set_random_seed(3)
    ours = make()
    ours.build(images.shape)
    assert ours.built
    keras.utils.set_random_seed(3)
    traced = make()
    with monkeypatch.context() as patch:
        patch.setattr(BilevelSearchModel, "build", keras.Model.build)
        traced(images, training=False)
    def paths(model):  # without the model's own (numbered) name
        return [v.path.split("/", 1)[1] for v in model.weights]

    assert paths(ours) == paths(traced)
    for a, b in zip(ours.weights, traced.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    if kind == "cas":  # the same code for all: traced once is enough
        in_graph = make()
        out = tf.function(lambda x: in_graph(x, training=False))(images)
        assert tuple(out.shape) == (1, 32, 32, 3)
        assert len(in_graph.weights) == len(ours.weights)


@pytest.mark.parametrize("kind", [  # each traces two gradient functions: 10-20 s, idle
    "cas", pytest.param("darts", marks=pytest.mark.slow),
    pytest.param("autortnet", marks=pytest.mark.slow)])
def test_recomputed_edges_give_the_same_loss_and_gradients(kind):
    """--recompute_edges runs each edge's candidates again in the backward pass: the
    same cross-entropy and gradients (weights and architecture logits), and the
    recomputed graph holds a second forward pass of the edges."""
    model = _supernets()[kind]()
    model.build((1, 32, 32, 3))
    rng = np.random.default_rng(0)
    images = tf.constant((rng.random((2, 32, 32, 3)) * 255).astype("float32"))
    # DARTS's supernet classifies images (its CIFAR set-up); the others label pixels
    label_shape = (2,) if kind == "darts" else (2, 32, 32)
    labels = tf.constant(rng.integers(0, 3, label_shape).astype("int32"))
    # the Gumbel draws (AutoRTNet: ops, and exits with the cells after the drawn exit
    # pruned by a cond) start from the same generator state in both calls
    seeds = [v for v in model.variables if "seed_generator_state" in v.path]
    start = [v.numpy() for v in seeds]
    results, nodes = [], []
    for recompute in (False, True):
        assert model.set_recompute_edges(recompute) > 0
        step = tf.function(model._loss_and_grads_fn(), autograph=False)
        concrete = step.get_concrete_function(images, labels)
        nodes.append(len(concrete.graph.as_graph_def().node))
        for variable, value in zip(seeds, start):
            variable.assign(value)
        ce, _, grads = step(images, labels)
        results.append([ce.numpy()] + [g.numpy() for g in grads])
    assert nodes[1] > nodes[0]  # the edges' forward pass, once more
    # The same float32 kernels on the same inputs; the order in which gradient
    # contributions are summed may differ, so the tolerance is float32's, scaled by the
    # largest gradient (a kernel behind a batch norm has components 1e-7 of it, where
    # the reordering's relative error is large and meaningless).
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-5)
    scale = max(np.abs(g).max() for g in results[0][1:])
    for plain, recomputed in zip(results[0][1:], results[1][1:]):
        np.testing.assert_allclose(recomputed, plain, rtol=1e-4, atol=1e-6 * scale)
