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

    def build(self, input_shape):
        for i in self._active:
            self.candidates[i].build(input_shape)

    def call(self, x, op_weights, training=None):
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
