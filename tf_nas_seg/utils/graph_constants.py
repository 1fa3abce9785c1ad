"""Constants made once per graph being traced, instead of once per use.

NOTE: hand-made because every `tf.constant` (`tf.ones`, a Python float multiplied
with a tensor, ...) inside a traced function is a graph node of its own, and a
supernet's step uses the same few values thousands of times: batch norms without a
scale and offset (four per layer and call), coupled weight decay and the momentum
of the fused SGD update (one per variable). In the CAS demo supernet's search step
these were about 7,500 of 56,600 nodes, each one traced in Python, set up by the
function runtime and executed at every step. TensorFlow has no such cache.

Eager calls get a fresh constant (nothing to save), and so does every call under a
strategy of several replicas (each replica's ops live on its own device).
"""

import contextlib
import weakref

# {graph: {(value, dtype, shape): tensor}}; a graph's entries go with the graph.
_CACHE = weakref.WeakKeyDictionary()


def graph_constant(tf, value, dtype="float32", shape=()):
    """`tf.constant(value, dtype, shape)`, made once per graph (see the module doc).

    Args:
        tf: The TensorFlow module (imported by the caller, which may be backend-neutral).
        value: A Python number, or a list for a one-dimensional constant.
        dtype: Its dtype.
        shape: Its shape (a number is broadcast to it).
    """
    dtype = tf.as_dtype(dtype)
    shape = tuple(int(d) for d in shape)
    graph = None
    # Under a strategy of several replicas (steps, optimizer updates per device), each
    # device's ops keep constants of their own rather than share one across devices.
    if not tf.executing_eagerly() and tf.distribute.get_strategy().num_replicas_in_sync == 1:
        graph = tf.compat.v1.get_default_graph()
    key = (repr(value), dtype.name, shape)
    if graph is not None:
        cache = _CACHE.setdefault(graph, {})
        if key in cache:
            return cache[key]
    # Made outside any control-dependency scope: its later users must not inherit one.
    scope = graph.control_dependencies(None) if graph is not None else contextlib.nullcontext()
    with scope:
        tensor = tf.constant(value, dtype=dtype, shape=shape or None)
    if graph is not None:
        cache[key] = tensor
    return tensor
