"""3x3 max or average pooling as a candidate op."""

import keras
from keras import layers

from tf_nas_seg.ops.batch_norm import BatchNorm
from tf_nas_seg.ops.macs import out_size


@keras.saving.register_keras_serializable(package="tf_nas_seg")
class PoolOp(keras.layers.Layer):
    """'same'-padded pooling, optionally followed by batch normalisation.

    Average pooling excludes the padding from the mean (PyTorch's
    `count_include_pad=False`, as DARTS uses). DARTS appends a non-affine batch
    normalisation to pooling ops during search (`batch_norm=True`).

    Args:
        pool_type: "max" or "avg".
        pool_size: Window size.
        strides: 1 or 2.
        batch_norm: Append batch normalisation.
        affine: Learn BN scale and offset (only with batch_norm).
    """

    def __init__(self, pool_type="max", pool_size=3, strides=1, batch_norm=False,
                 affine=False, **kwargs):
        super().__init__(**kwargs)
        if pool_type not in ("max", "avg"):
            raise ValueError(f"pool_type must be 'max' or 'avg', got {pool_type!r}")
        self.pool_type = pool_type
        self.pool_size = int(pool_size)
        self.strides = int(strides)
        self.batch_norm = bool(batch_norm)
        self.affine = bool(affine)
        pool_cls = layers.MaxPooling2D if pool_type == "max" else layers.AveragePooling2D
        self.pool = pool_cls(self.pool_size, strides=self.strides, padding="same",
                             name="pool")
        self.bn = (BatchNorm(affine=self.affine, name="bn") if self.batch_norm else None)

    def build(self, input_shape):
        if self.bn is not None:
            self.bn.build(self.compute_output_shape(input_shape))

    def call(self, x, training=None):
        x = self.pool(x)
        if self.bn is not None:
            x = self.bn(x, training=training)
        return x

    def compute_output_shape(self, input_shape):
        def reduce(size):
            return None if size is None else out_size(size, self.strides)
        return (input_shape[0], reduce(input_shape[1]), reduce(input_shape[2]),
                input_shape[3])

    def count_macs(self, input_shape):
        """Pooling performs no multiply-accumulates (see `tf_nas_seg.ops.macs`)."""
        del input_shape
        return 0

    def get_config(self):
        config = super().get_config()
        config.update({"pool_type": self.pool_type, "pool_size": self.pool_size,
                       "strides": self.strides, "batch_norm": self.batch_norm,
                       "affine": self.affine})
        return config
