"""The identity (skip connection) candidate op."""

import keras


@keras.saving.register_keras_serializable(package="tf_nas_seg")
class Identity(keras.layers.Layer):
    """Returns its input unchanged (stride 1 only; stride 2 uses FactorizedReduce)."""

    def call(self, x):
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def count_macs(self, input_shape):
        """The identity performs no multiply-accumulates."""
        del input_shape
        return 0
