"""The CAS multi-scale cell (MSCell): a DAG over a low- and a high-level feature map."""

import keras

from tf_nas_seg.ops.conv_op import ConvOp
from tf_nas_seg.ops.resize_like import ResizeLike
from tf_nas_seg.space.cell import Cell


@keras.saving.register_keras_serializable(package="tf_nas_seg")
class MultiScaleCell(Cell):
    """CAS Fig. 3: inputs are a stride-4 and a stride-16 map; 9 nodes by default.

    The high-level input is bilinearly upsampled to the low-level input's size, and every
    edge leaving an input has its own 1x1 conv projecting that input to the cell width
    (CAS: "an independent 1x1 conv projects channels on every edge from an input"). The
    op set has no stride-2 ops: the cell keeps the low-level resolution.

    Args:
        op_set: Name of the op set (default the CAS multi-scale set).
        steps: Intermediate nodes (CAS: 6 = 9 nodes minus 2 inputs and the output).
        channels: Channels of every node.
        genotype: A CellGenotype (or JSON dict) for a fixed cell; None to search.
        affine: Learn BN scale and offset (default: only in fixed cells).
    """

    multiscale = True

    def __init__(self, op_set="cas_multiscale", steps=6, channels=64, genotype=None,
                 affine=None, **kwargs):
        for key in ("reduction", "reduction_prev"):
            kwargs.pop(key, None)
        super().__init__(op_set, steps, channels, reduction=False, reduction_prev=False,
                         genotype=genotype, affine=affine, **kwargs)
        for node, source in self.edges:
            if source < 2:
                self.projections[(node, source)] = ConvOp(
                    self.channels, ((1, 1),), order=self.order, affine=self.affine,
                    name=f"proj_{node}_{source}")

    def _build_preprocessing(self):
        self.upsample = ResizeLike(name="upsample")
        self.projections = {}

    def build_inputs(self, s0_shape, s1_shape):
        for (node, source), projection in self.projections.items():
            channels = s0_shape[-1] if source == 0 else s1_shape[-1]
            projection.build((s0_shape[0], s0_shape[1], s0_shape[2], channels))

    def preprocess(self, s0, s1, training=None):
        return [s0, self.upsample(s1, s0)]

    def edge_input(self, node, source, state, training=None):
        if source >= 2:
            return state
        return self.projections[(node, source)](state, training=training)

    def input_macs(self, s0_shape, s1_shape):
        """MACs of the per-edge 1x1 projections (the upsampling counts zero)."""
        total = 0
        for (node, source) in self.edges:
            if source < 2:
                in_shape = s0_shape if source == 0 else (s0_shape[0], s0_shape[1],
                                                         s1_shape[2])
                total += self.projections[(node, source)].count_macs(in_shape)
        return total

    def get_config(self):
        config = super().get_config()
        for key in ("reduction", "reduction_prev"):
            config.pop(key)
        return config
