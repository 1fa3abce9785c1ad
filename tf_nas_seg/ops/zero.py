"""The `none` / `zero` candidate op: no edge."""

import keras
from keras import ops

from tf_nas_seg.ops.macs import out_size


@keras.saving.register_keras_serializable(package="tf_nas_seg")
class Zero(keras.layers.Layer):
    """Outputs zeros shaped like the op's output: the edge is absent.

    `MixedOp` never calls it (its contribution and its gradient are zero), so it costs
    nothing during search; it exists so that every op set is a list of real layers.

    Args:
        strides: 1 or 2; the output is the input's size divided by the stride.
    """

    def __init__(self, strides=1, **kwargs):
        super().__init__(**kwargs)
        self.strides = int(strides)

    def call(self, x):
        if self.strides > 1:
            x = x[:, ::self.strides, ::self.strides, :]
        return ops.zeros_like(x)

    def compute_output_shape(self, input_shape):
        def reduce(size):
            return None if size is None else out_size(size, self.strides)
        return (input_shape[0], reduce(input_shape[1]), reduce(input_shape[2]),
                input_shape[3])

    def count_macs(self, input_shape):
        """No edge, no multiply-accumulates."""
        del input_shape
        return 0

    def get_config(self):
        config = super().get_config()
        config.update({"strides": self.strides})
        return config
