"""Keras SGD with momentum whose TensorFlow update is one fused kernel per variable."""

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
    The slots, the schedule, the checkpoint layout and the serialised config are those
    of `keras.optimizers.SGD`; other backends, Nesterov and no momentum use
    its update unchanged.

    Its gradients are the global ones: on several replicas (tf.distribute) the search
    and training steps sum them over the replicas before `apply`
    (`utils.distribute.ReducedGradients`).
    """

    def update_step(self, gradient, variable, learning_rate):
        if (keras.backend.backend() != "tensorflow" or self.momentum == 0 or self.nesterov
                or not hasattr(variable, "handle")):
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf

        m = self.momentums[self._get_variable_index(variable)]
        dtype = variable.dtype
        tf.raw_ops.ResourceApplyKerasMomentum(
            var=variable.handle, accum=getattr(m, "value", m).handle,
            lr=ops.cast(learning_rate, dtype), grad=ops.cast(gradient, dtype),
            momentum=graph_constant(tf, self.momentum, dtype), use_locking=False,
            use_nesterov=False)
        return None
