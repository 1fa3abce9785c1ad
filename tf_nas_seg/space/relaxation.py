"""Continuous relaxations of the categorical choice of an op (softmax and Gumbel)."""

import keras
from tf_nas_seg.errors import ConfigError
from keras import ops

RELAXATIONS = ("softmax", "gumbel", "gumbel_hard")
_EPS = 1e-10


def gumbel_softmax(logits, temperature, seed, hard=False):
    """Draws a relaxed one-hot sample per row of `logits` (SNAS / FBNet / AutoRTNet).

    m_o = softmax((log pi_o + g_o) / tau), pi = softmax(logits), g = -log(-log(u)).

    Args:
        logits: [..., num_ops] architecture logits.
        temperature: Scalar tau > 0.
        seed: A `keras.random.SeedGenerator` (stateful, checkpointed) or an int.
        hard: Straight-through: the forward value is the one-hot argmax of the soft
            sample, the gradient is that of the soft sample.

    Returns:
        Tensor shaped like `logits`, rows summing to one.
    """
    u = keras.random.uniform(ops.shape(logits), minval=_EPS, maxval=1.0 - _EPS, seed=seed)
    gumbel = -ops.log(-ops.log(u))
    soft = ops.softmax((ops.log_softmax(logits, axis=-1) + gumbel) / temperature, axis=-1)
    if not hard:
        return soft
    one_hot = ops.one_hot(ops.argmax(soft, axis=-1), ops.shape(logits)[-1], dtype=soft.dtype)
    return ops.stop_gradient(one_hot - soft) + soft


@keras.saving.register_keras_serializable(package="tf_nas_seg")
class ArchitectureRelaxation(keras.layers.Layer):
    """Turns architecture logits into op weights: softmax (CAS) or Gumbel (AutoRTNet).

    The temperature is a non-trainable variable so a schedule can drive it and a
    checkpoint restores it; the Gumbel noise comes from a checkpointed seed generator, so
    a resumed search draws the same samples as an uninterrupted one. At inference
    (`training=False`) the Gumbel modes return the softmax probabilities.

    Args:
        mode: "softmax", "gumbel" (soft samples) or "gumbel_hard" (straight-through).
        temperature: Initial temperature (Gumbel modes only).
        seed: Seed of the noise generator.
    """

    def __init__(self, mode="softmax", temperature=1.0, seed=0, **kwargs):
        super().__init__(**kwargs)
        if mode not in RELAXATIONS:
            raise ConfigError(f"relaxation must be one of {RELAXATIONS}, got {mode!r}")
        self.mode = mode
        self.initial_temperature = float(temperature)
        self.seed = int(seed)
        self.temperature = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(self.initial_temperature),
            trainable=False, name="temperature")
        self.seed_generator = keras.random.SeedGenerator(self.seed, name="gumbel_seed")

    def call(self, logits, training=None):
        if self.mode == "softmax" or not training:
            return ops.softmax(logits, axis=-1)
        return gumbel_softmax(logits, self.temperature, self.seed_generator,
                              hard=self.mode == "gumbel_hard")

    def get_config(self):
        config = super().get_config()
        config.update({"mode": self.mode, "temperature": self.initial_temperature,
                       "seed": self.seed})
        return config
