"""Batch normalisation as one fused kernel, the layer every op of the library uses."""

import keras
from keras import ops

from tf_nas_seg.utils.graph_constants import graph_constant


@keras.saving.register_keras_serializable(package="tf_nas_seg")
class BatchNorm(keras.layers.Layer):
    """Batch normalisation over the last axis of NHWC tensors, fused on TensorFlow.

    NOTE: `keras.layers.BatchNormalization` is written with generic ops (moments, then
    normalise, then two moving-average updates): about 40 graph nodes per layer forward
    and backward. A supernet holds thousands of them, and with it tracing the CAS
    search step took minutes. On the TensorFlow backend this layer calls the fused
    kernel (`FusedBatchNormV3`: one node forward, one backward, which also returns the
    updated moving statistics), which makes tracing and each step several times faster.
    Other backends use `keras.ops.batch_normalization`.

    Args:
        affine: Learn a scale (gamma) and an offset (beta); DARTS turns this off in
            search cells.
        momentum: Moving-average momentum; 0.9 matches PyTorch's default 0.1 update
            rate, the setting the papers' code used (Keras's default is 0.99).
        epsilon: Added to the variance.
        track_running_stats: Update the moving statistics in training and normalise
            with them at inference (PyTorch's name). When False, both training and
            inference normalise with the batch's statistics and nothing is assigned:
            what a search supernet wants, whose steps both use batch statistics and
            whose moving statistics are never read (`BilevelSearchModel.
            configure_search` turns them off). The moving variables are still created
            (a layer's weights do not depend on the setting); a search leaves them out
            of its checkpoints (`BilevelSearchModel.unused_variables`).

    `synchronized` (an attribute, not a setting of the network: `synchronize_batch_norms`
    sets it for a run) makes a layer run in a step on several replicas
    (`tf.distribute`) normalise with the mean and variance of the global batch,
    all-reduced across the replicas, instead of its own share's; the moving statistics
    are then the global batch's too. One replica always takes the fused kernel.
    """

    def __init__(self, affine=True, momentum=0.9, epsilon=1e-5, track_running_stats=True,
                 **kwargs):
        super().__init__(**kwargs)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.synchronized = False

    def build(self, input_shape):
        channels = input_shape[-1]
        if self.affine:
            self.gamma = self.add_weight(shape=(channels,), initializer="ones", name="gamma")
            self.beta = self.add_weight(shape=(channels,), initializer="zeros", name="beta")
        # "mean": replicas that normalised with their own statistics (per-replica batch
        # norm) average them into the one moving value every replica keeps.
        self.moving_mean = self.add_weight(shape=(channels,), initializer="zeros",
                                           trainable=False, name="moving_mean",
                                           aggregation="mean")
        self.moving_variance = self.add_weight(shape=(channels,), initializer="ones",
                                               trainable=False, name="moving_variance",
                                               aggregation="mean")

    def _scale_offset(self, channels, dtype):
        if self.affine:
            return ops.cast(self.gamma, dtype), ops.cast(self.beta, dtype)
        return ops.ones((channels,), dtype), ops.zeros((channels,), dtype)

    def _fused_scale_offset(self, tf, channels):
        """float32 scale and offset for the fused kernel (shared constants if none)."""
        if self.affine:
            return tf.cast(self.gamma, tf.float32), tf.cast(self.beta, tf.float32)
        return (graph_constant(tf, 1.0, shape=(channels,)),
                graph_constant(tf, 0.0, shape=(channels,)))

    def call(self, x, training=None):
        channels = self.moving_mean.shape[0]
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            scale, offset = self._fused_scale_offset(tf, channels)
            if self.synchronized and (training or not self.track_running_stats):
                context = tf.distribute.get_replica_context()
                if context is not None and context.num_replicas_in_sync > 1:
                    return self._synchronized_call(tf, context, x, scale, offset)
            if not self.track_running_stats:
                # NOTE: no moving-average assignments: with thousands of BN layers in a
                # supernet these stateful ops (two per layer and forward pass) cost a
                # third of the search step's first call (control edges the function
                # runtime adds for every stateful op), and the search never reads them.
                empty = graph_constant(tf, [], shape=(0,))
                if x.dtype == tf.float32:
                    # NOTE: the first fused kernel, not V3 (what tf.nn calls): the same
                    # kernels and values, but TensorFlow's gradient tape accepts no
                    # gradient for its unused outputs (statistics and reserve spaces),
                    # where for V3 it makes a zeros node for each of five: 5 of the ~30
                    # nodes of a supernet's batch norm, forward and backward.
                    return tf.raw_ops.FusedBatchNorm(x=x, scale=scale, offset=offset,
                                                     mean=empty, variance=empty,
                                                     epsilon=self.epsilon,
                                                     is_training=True)[0]
                y, _, _ = tf.compat.v1.nn.fused_batch_norm(x, scale, offset, mean=empty,
                                                           variance=empty,
                                                           epsilon=self.epsilon,
                                                           is_training=True)
                return y
            # The fused kernel computes in float32 for float16/bfloat16 inputs too.
            # Under a mixed-precision policy Keras autocasts variables read in `call`
            # to the compute dtype; the fused kernel wants its statistics in float32.
            moving_mean = tf.cast(self.moving_mean.value, tf.float32)
            moving_variance = tf.cast(self.moving_variance.value, tf.float32)
            if training:
                y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                    x, scale, offset, mean=moving_mean,
                    variance=moving_variance, epsilon=self.epsilon,
                    is_training=True, exponential_avg_factor=1.0 - self.momentum)
                self.moving_mean.assign(mean)
                self.moving_variance.assign(variance)
                return y
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(
                x, scale, offset, mean=moving_mean, variance=moving_variance,
                epsilon=self.epsilon,
                is_training=False)
            return y
        scale, offset = self._scale_offset(channels, x.dtype)
        if not self.track_running_stats:
            mean, variance = ops.moments(x, axes=[0, 1, 2])
        elif training:
            mean, variance = ops.moments(x, axes=[0, 1, 2])
            self.moving_mean.assign(self.momentum * self.moving_mean
                                    + (1.0 - self.momentum) * mean)
            self.moving_variance.assign(self.momentum * self.moving_variance
                                        + (1.0 - self.momentum) * variance)
        else:
            mean, variance = self.moving_mean, self.moving_variance
        return ops.batch_normalization(x, mean, variance, axis=-1, offset=offset,
                                       scale=scale, epsilon=self.epsilon)

    def _synchronized_call(self, tf, context, x, scale, offset):
        """Normalises with the global batch's statistics (sums all-reduced over the
        replicas, one all-reduce per layer and pass) and updates the moving ones."""
        x32 = tf.cast(x, tf.float32)
        count = tf.cast(tf.reduce_prod(tf.shape(x32)[:-1]), tf.float32)
        total = tf.reduce_sum(x32, axis=[0, 1, 2])
        squares = tf.reduce_sum(tf.square(x32), axis=[0, 1, 2])
        count, total, squares = context.all_reduce(tf.distribute.ReduceOp.SUM,
                                                   [count, total, squares])
        mean = total / count
        variance = tf.maximum(squares / count - tf.square(mean), 0.0)
        y = tf.nn.batch_normalization(x32, mean, variance, offset, scale, self.epsilon)
        if self.track_running_stats:
            # The fused kernel's moving variance is the unbiased one (n / (n - 1)).
            unbiased = variance * count / tf.maximum(count - 1.0, 1.0)
            rate = 1.0 - self.momentum
            self.moving_mean.assign(
                tf.cast(self.moving_mean.value, tf.float32) * self.momentum
                + tf.stop_gradient(mean) * rate)
            self.moving_variance.assign(
                tf.cast(self.moving_variance.value, tf.float32) * self.momentum
                + tf.stop_gradient(unbiased) * rate)
        return tf.cast(y, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"affine": self.affine, "momentum": self.momentum,
                       "epsilon": self.epsilon,
                       "track_running_stats": self.track_running_stats})
        return config


def synchronize_batch_norms(model, synchronized):
    """Sets whether every `BatchNorm` in `model` uses global-batch statistics when it
    runs on several replicas (`BatchNorm.synchronized`); returns how many it set."""
    layers = [layer for layer in model._flatten_layers(include_self=True)
              if isinstance(layer, BatchNorm)]
    for layer in layers:
        layer.synchronized = bool(synchronized)
    return len(layers)
