"""utils/graph_constants: one constant per graph being traced."""


def test_graph_constant_is_made_once_per_graph_and_fresh_elsewhere(monkeypatch):
    import tensorflow as tf

    from tf_nas_seg.utils.graph_constants import graph_constant

    seen = {}

    @tf.function(autograph=False)
    def f(x):
        seen["a"] = graph_constant(tf, 0.5)
        seen["b"] = graph_constant(tf, 0.5)
        seen["c"] = graph_constant(tf, 0.5, "float64")
        seen["ones"] = graph_constant(tf, 1.0, shape=(3,))
        with tf.control_dependencies([tf.identity(x)]):
            seen["inside"] = graph_constant(tf, 2.0)
        return x * seen["a"] * seen["ones"]

    assert f(tf.ones(3)).numpy().tolist() == [0.5] * 3
    assert seen["a"] is seen["b"] and seen["a"] is not seen["c"]
    assert seen["c"].dtype == tf.float64 and seen["ones"].shape == (3,)
    assert not seen["inside"].op.control_inputs  # made outside the dependency scope
    assert graph_constant(tf, 0.5) is not graph_constant(tf, 0.5)  # eager: fresh
    class TwoReplicas:  # what tf.distribute.get_strategy() says on two devices
        num_replicas_in_sync = 2

    monkeypatch.setattr(tf.distribute, "get_strategy", lambda: TwoReplicas())
    same = {}

    @tf.function(autograph=False)
    def g():
        same["a"], same["b"] = graph_constant(tf, 0.5), graph_constant(tf, 0.5)
        return same["a"] + same["b"]

    assert float(g()) == 1.0 and same["a"] is not same["b"]
