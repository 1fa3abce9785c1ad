"""The AutoRTNet hyper-cell: a reduction cell, normal cells, and a searched exit."""

import keras
from keras import ops

from tf_nas_seg.ops.factorized_reduce import FactorizedReduce
from tf_nas_seg.ops.macs import out_size
from tf_nas_seg.space.cell import Cell


@keras.saving.register_keras_serializable(package="tf_nas_seg")
class HyperCell(keras.layers.Layer):
    """AutoRTNet Fig. 3: `num_cells` search cells whose depth is chosen by an exit.

    Cell 0 is a reduction cell, cells 1.. are normal cells; the reduction cell takes
    its own op weights, the normal cells share one set. Every cell k has an exit with
    weight z_k (a Gumbel sample over the exit logits beta), and the hyper-cell returns

        out = sum_k z_k * x_k,     prev = sum_k z_k * x_(k-1),

    where prev is the second input of the next reduction cell (the two-input rule: a
    hyper-cell that ends at cell k hands on x_k and x_(k-1)). x_(-1) is this hyper-cell's
    input s1, which has twice the spatial size; `align` (a factorized reduce to the cell
    output width) brings it to the size of the other x_(k-1).

    With a hard sample (`hard=True`, one-hot z with a straight-through gradient) only
    cells 0..k run: the cells are chained through nested conditionals on the exit
    index, so the pruned cells are skipped, not masked (GDAS-style: the gradient
    reaches beta through z_k of the executed exit). With soft samples every cell runs.

    Args:
        op_set: Op set of the cells.
        steps: Intermediate nodes per cell.
        channels: Node channels of every cell.
        num_cells: Cells (the reduction cell included).
        reduction_prev: Input s0 has twice the spatial size of input s1.
        align_previous: Build `align` and return `prev` (False for the last hyper-cell,
            whose `prev` nobody uses; it then returns `out` twice).
    """

    def __init__(self, op_set, steps, channels, num_cells, reduction_prev=False,
                 align_previous=True, **kwargs):
        super().__init__(**kwargs)
        self.op_set = op_set
        self.steps = int(steps)
        self.channels = int(channels)
        self.num_cells = int(num_cells)
        self.reduction_prev = bool(reduction_prev)
        self.align_previous = bool(align_previous)
        if self.num_cells < 1:
            raise ValueError(f"a hyper-cell needs at least one cell, got {num_cells}")
        self.cells = [Cell(op_set, self.steps, self.channels, reduction=k == 0,
                           reduction_prev=self.reduction_prev if k == 0 else k == 1,
                           name=f"cell_{k}")
                      for k in range(self.num_cells)]
        self.align = (FactorizedReduce(self.output_channels, affine=False, name="align")
                      if self.align_previous else None)

    @property
    def output_channels(self):
        return self.channels * self.steps

    def build(self, s0_shape, s1_shape, reduce_weights_shape=None,
              normal_weights_shape=None, exit_weights_shape=None):
        h, w = s1_shape[1], s1_shape[2]
        h = None if h is None else out_size(h, 2)
        w = None if w is None else out_size(w, 2)
        out_shape = (s1_shape[0], h, w, self.output_channels)
        a, b = s0_shape, s1_shape
        for cell in self.cells:
            cell.build(a, b)
            a, b = b, out_shape
        if self.align is not None:
            self.align.build(s1_shape)

    def call(self, s0, s1, reduce_weights, normal_weights, exit_weights, hard=False,
             training=None):
        if hard:
            return self._call_pruned(s0, s1, reduce_weights, normal_weights, exit_weights,
                                     training)
        xs = [s1]
        a, b = s0, s1
        for k, cell in enumerate(self.cells):
            a, b = b, cell(a, b, reduce_weights if k == 0 else normal_weights,
                           training=training)
            xs.append(b)
        z = ops.unstack(exit_weights, num=self.num_cells)
        out = sum(z[k] * xs[k + 1] for k in range(self.num_cells))
        if self.align is None:
            return out, out
        prev = z[0] * self.align(s1, training=training)
        for k in range(1, self.num_cells):
            prev = prev + z[k] * xs[k]
        return prev, out

    def _call_pruned(self, s0, s1, reduce_weights, normal_weights, exit_weights,
                     training):
        exit_index = ops.argmax(exit_weights)

        def stop(i, before, last):
            # Exit at cell i - 1: hand on (x_(i-2), x_(i-1)).
            if self.align is None:
                return last, last
            if i == 1:
                before = self.align(before, training=training)
            return before, last

        def run_from(i, before, last):
            # Cells 0..i-1 ran; before = x_(i-2) (s1 when i == 1), last = x_(i-1).
            if i == self.num_cells:
                return stop(i, before, last)

            def go_on():
                return run_from(i + 1, last,
                                self.cells[i](before, last, normal_weights,
                                              training=training))

            return ops.cond(exit_index >= i, go_on, lambda: stop(i, before, last))

        x0 = self.cells[0](s0, s1, reduce_weights, training=training)
        prev, out = run_from(1, s1, x0)
        z = ops.take(exit_weights, exit_index)
        return z * prev, z * out

    def compute_output_shape(self, s0_shape, s1_shape, reduce_weights_shape=None,
                             normal_weights_shape=None, exit_weights_shape=None):
        shape = self.cells[0].compute_output_shape(s0_shape, s1_shape)
        return shape, shape

    def get_config(self):
        config = super().get_config()
        config.update({"op_set": self.op_set, "steps": self.steps,
                       "channels": self.channels, "num_cells": self.num_cells,
                       "reduction_prev": self.reduction_prev,
                       "align_previous": self.align_previous})
        return config
