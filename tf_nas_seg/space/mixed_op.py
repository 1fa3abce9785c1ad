"""The weighted sum of all candidate ops on one edge of a search cell."""

import math

import keras

from tf_nas_seg.ops.op_set import NONE_OPS, get_op_set


@keras.saving.register_keras_serializable(package="tf_nas_seg")
class MixedOp(keras.layers.Layer):
    """obar(x) = sum_o w_o * o(x) over the ops of one op set.

    The weights `w` come from the supernet (softmax or a Gumbel sample of the logits that
    all cells of one type share), so the same MixedOp serves both relaxations. The
    no-edge op contributes zero output and zero gradient, so it is never executed.

    Args:
        op_set: Name of a registered op set.
        channels: Input and output channels.
        strides: 1, or 2 on the input edges of a reduction cell.
        affine: Learn BN scale and offset in the candidate ops.

    `recompute` (an attribute, not a setting of the network: `BilevelSearchModel.
    set_recompute_edges` sets it for a run) keeps only the edge's input and weights for
    the backward pass and runs the candidates again there (gradient checkpointing of
    the edge; TensorFlow backend). Forward values and gradients are the same; the
    candidates' intermediate activations, most of a supernet step's memory, are no
    longer held from the forward pass to the backward one, for one more forward pass
    of the candidates per step.
    """

    def __init__(self, op_set, channels, strides=1, affine=False, **kwargs):
        super().__init__(**kwargs)
        self.op_set = op_set
        self.channels = int(channels)
        self.strides = int(strides)
        self.affine = bool(affine)
        spec = get_op_set(op_set)
        self.candidates = [spec.build(name, self.channels, self.strides, self.affine)
                           for name in spec.ops]
        self._active = [i for i, name in enumerate(spec.ops) if name not in NONE_OPS]
        self.recompute = False

    def build(self, input_shape):
        for i in self._active:
            self.candidates[i].build(input_shape)

    def call(self, x, op_weights, training=None):
        if self.recompute and keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            if not _inside_a_branch(tf):
                return self._recomputed_call(tf, x, op_weights, training)
        return self._weighted_sum(x, op_weights, training)

    def _recomputed_call(self, tf, x, op_weights, training):
        """The weighted sum, its gradient taken by running it again on the saved input.

        NOTE: hand-made rather than `tf.recompute_grad`, which adds a nested custom
        gradient and five ops per input to each call: on the DARTS-equivalent
        supernet (112 edges) its step took 45 s to trace against 18 s for this
        (13 s without recomputation); the peak memory saved is the same.
        """
        @tf.custom_gradient
        def edge(x, op_weights):
            y = self._weighted_sum(x, op_weights, training)

            def grad(dy, variables=None):
                variables = list(variables or [])
                # The recomputation waits for the output's gradient: without the
                # dependency the executor may run it as soon as x exists, in the
                # forward pass, and hold its activations as before.
                with tf.control_dependencies([dy]):
                    x_again, w_again = tf.identity(x), tf.identity(op_weights)
                with tf.GradientTape() as tape:
                    tape.watch([x_again, w_again])
                    y_again = self._weighted_sum(x_again, w_again, training)
                grads = tape.gradient(y_again, [x_again, w_again] + variables,
                                      output_gradients=dy,
                                      unconnected_gradients=tf.UnconnectedGradients.ZERO)
                return grads[:2], grads[2:]

            return y, grad

        return edge(x, op_weights)

    def _weighted_sum(self, x, op_weights, training):
        out = None
        # One unstack instead of a strided slice (and its constants) per candidate.
        weights = keras.ops.unstack(op_weights, num=len(self.candidates))
        for i in self._active:
            y = self.candidates[i](x, training=training) * weights[i]
            out = y if out is None else out + y
        return out

    def compute_output_shape(self, input_shape, op_weights_shape=None):
        return self.candidates[self._active[0]].compute_output_shape(input_shape)

    def count_macs_per_op(self, input_shape):
        """MACs of each candidate op (logit order) for a (h, w, c) input."""
        return [op.count_macs(input_shape) for op in self.candidates]

    def count_params_per_op(self):
        """Trainable parameters of each candidate op (logit order); needs a built layer."""
        return [sum(math.prod(w.shape) for w in op.trainable_weights)
                for op in self.candidates]

    def get_config(self):
        config = super().get_config()
        config.update({"op_set": self.op_set, "channels": self.channels,
                       "strides": self.strides, "affine": self.affine})
        return config


def _inside_a_branch(tf):
    """True while tracing a branch of a `cond` (or a loop body), in any enclosing graph.

    NOTE: TensorFlow's gradient of a `cond` cannot take a custom gradient that reads
    variables afresh (cond_v2 fails on the variable handles the recomputation
    captures), so edges there (the cells after the first of an AutoRTNet hyper-cell
    with hard, pruned exits) keep their activations instead.
    """
    if tf.executing_eagerly():
        return False
    graph = tf.compat.v1.get_default_graph()
    while graph is not None:
        if type(graph).__name__ in ("CondBranchFuncGraph", "WhileCondFuncGraph",
                                    "WhileBodyFuncGraph"):
            return True
        graph = getattr(graph, "outer_graph", None)
    return False
