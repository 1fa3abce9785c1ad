"""Small numeric helpers on NumPy arrays, one copy each."""

import numpy as np


def softmax(values, axis=-1):
    """Softmax in float64 along `axis` (stable: the maximum is subtracted first)."""
    values = np.asarray(values, dtype=np.float64)
    probs = np.exp(values - values.max(axis=axis, keepdims=True))
    return probs / probs.sum(axis=axis, keepdims=True)
