"""Keras SGD with momentum whose TensorFlow update is one fused kernel per variable."""

import contextlib

import keras
from keras import ops

from tf_nas_seg.utils.distribute import ReducedGradients
from tf_nas_seg.utils.graph_constants import graph_constant


@keras.saving.register_keras_serializable(package="tf_nas_seg")
class FusedSGD(ReducedGradients, keras.optimizers.SGD):
    """`keras.optimizers.SGD` (momentum, not Nesterov) updated by one op per variable.

    NOTE: hand-made because Keras writes the momentum update with generic ops (read the
    slot, two products, a difference, an assignment, a read and an assign-add: about
    eight graph nodes per variable). A CAS supernet has about 1,600 weight variables, so
    that is over 12,000 nodes of the search step's graph, traced in Python and then
    optimised by Grappler at every search start. On TensorFlow this class applies the
    same update with TensorFlow's `ResourceApplyKerasMomentum` kernel, written for
    exactly this rule (`m = momentum * m - lr * g; w += m`): one node per variable.
    The learning rate is read (and multiplied by the gradient scale, see
    `scaled_gradients`) once per `apply`, not once per variable. The slots, the
    schedule, the checkpoint layout and the serialised config are those of
    `keras.optimizers.SGD`; other backends, Nesterov and no momentum use its update
    unchanged.

    Its gradients are the global ones: on several replicas (tf.distribute) the search
    and training steps sum them over the replicas before `apply`
    (`utils.distribute.ReducedGradients`).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._gradient_scale = None
        # What one `apply` shares between its variables (a plain object: a dict
        # attribute would become a tracked dependency of the optimizer's checkpoint).
        self._apply_state = None

    @contextlib.contextmanager
    def scaled_gradients(self, scale):
        """Within it, `apply` updates with `scale * gradient` for every gradient.

        A global-norm clip (`scale = min(1, clip / norm)`) is one product with the
        learning rate instead of one with each of thousands of gradients (and an
        identity each, as `tf.clip_by_global_norm` makes): the same update up to
        float32 rounding. Where the update is not the fused one, the gradients are
        scaled one by one.
        """
        self._gradient_scale = scale
        try:
            yield
        finally:
            self._gradient_scale = None

    def _fused(self, variable):
        return (keras.backend.backend() == "tensorflow" and self.momentum != 0
                and not self.nesterov and hasattr(variable, "handle"))

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        scale = self._gradient_scale
        if scale is not None and not all(self._fused(v) for v in trainable_variables):
            grads = [g * ops.cast(scale, g.dtype) for g in grads]
            scale = None
        self._apply_state = _ApplyState(scale)
        try:
            return super()._backend_update_step(grads, trainable_variables, learning_rate)
        finally:
            self._apply_state = None

    def _rate(self, tf, learning_rate, variable):
        """The learning rate (times the gradient scale) in the variable's dtype, made
        once per dtype and device in one `apply` (once per variable outside one)."""
        state = self._apply_state
        if state is None:  # update_step called on its own
            return ops.cast(learning_rate, variable.dtype)
        key = (variable.dtype, variable.device)
        if key not in state.rates:
            rate = ops.cast(learning_rate, variable.dtype)
            if state.scale is not None:
                rate = rate * tf.cast(state.scale, variable.dtype)
            state.rates[key] = rate
        return state.rates[key]

    def update_step(self, gradient, variable, learning_rate):
        if not self._fused(variable):
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf

        m = self.momentums[self._get_variable_index(variable)]
        dtype = variable.dtype
        if gradient.dtype != dtype:
            gradient = ops.cast(gradient, dtype)
        tf.raw_ops.ResourceApplyKerasMomentum(
            var=variable.handle, accum=getattr(m, "value", m).handle,
            lr=self._rate(tf, learning_rate, variable), grad=gradient,
            momentum=graph_constant(tf, self.momentum, dtype), use_locking=False,
            use_nesterov=False)
        return None


class _ApplyState:
    """The gradient scale of one `apply` and the learning rates made for it."""

    def __init__(self, scale):
        self.scale = scale
        self.rates = {}  # {(dtype, device): learning rate}
