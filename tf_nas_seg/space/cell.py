"""A DAG cell: the search cell (a MixedOp on every edge) and the same cell fixed."""

import keras
from keras import ops

from tf_nas_seg.ops.conv_op import ConvOp
from tf_nas_seg.ops.factorized_reduce import FactorizedReduce
from tf_nas_seg.ops.macs import out_size
from tf_nas_seg.ops.op_set import get_op_set
from tf_nas_seg.space.genotype import CellGenotype, num_edges
from tf_nas_seg.space.mixed_op import MixedOp


@keras.saving.register_keras_serializable(package="tf_nas_seg")
class Cell(keras.layers.Layer):
    """Two preprocessed inputs, `steps` intermediate nodes, output = concat of nodes.

    x_j = sum_{i<j} o_(i,j)(x_i). Without `genotype` every edge is a `MixedOp` over the
    whole op set and `call` takes the op weights of the cell type; with a genotype only
    the kept edges exist, each a plain op, and no weights are taken.

    Input 0 (the cell before the previous one) goes through a factorized reduce when it
    is twice the size of input 1 (`reduction_prev`), else a 1x1 conv; input 1 through a
    1x1 conv. In a reduction cell the edges leaving the inputs have stride 2.

    Args:
        op_set: Name of the op set.
        steps: Intermediate nodes.
        channels: Channels of every node.
        reduction: Reduction cell (halves the spatial size).
        reduction_prev: Input 0 has twice the spatial size of input 1.
        genotype: A CellGenotype (or its JSON dict) for a fixed cell; None to search.
        affine: Learn BN scale and offset (default: only in fixed cells).
    """

    def __init__(self, op_set, steps, channels, reduction=False, reduction_prev=False,
                 genotype=None, affine=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(genotype, dict):
            genotype = CellGenotype.from_json(genotype, where=self.name)
        if genotype is not None:
            if genotype.op_set != op_set:
                raise ValueError(f"cell {self.name}: genotype op set {genotype.op_set!r} "
                                 f"does not match the cell's op set {op_set!r}")
            steps = len(genotype.nodes)
        self.op_set = op_set
        self.steps = int(steps)
        self.channels = int(channels)
        self.reduction = bool(reduction)
        self.reduction_prev = bool(reduction_prev)
        self.genotype = genotype
        self.affine = (genotype is not None) if affine is None else bool(affine)
        spec = get_op_set(op_set)
        self.order = spec.order
        self._build_preprocessing()
        # (node, source) -> edge layer; for a search cell also the logit row.
        self.edges = {}
        self.edge_rows = {}
        if genotype is None:
            row = 0
            for j in range(self.steps):
                for i in range(j + 2):
                    self.edges[(j, i)] = MixedOp(op_set, self.channels, self._stride(i),
                                                 affine=self.affine, name=f"edge_{j}_{i}")
                    self.edge_rows[(j, i)] = row
                    row += 1
            self.concat = tuple(range(2, self.steps + 2))
        else:
            for j, node in enumerate(genotype.nodes):
                for e in node:
                    self.edges[(j, e.source)] = spec.build(
                        e.op, self.channels, self._stride(e.source), affine=self.affine)
            self.concat = tuple(genotype.concat)

    def build(self, s0_shape, s1_shape, op_weights_shape=None):
        self.build_inputs(s0_shape, s1_shape)
        height, width = s1_shape[1], s1_shape[2]
        if self.reduction:
            height = None if height is None else out_size(height, 2)
            width = None if width is None else out_size(width, 2)
        node_shape = (s1_shape[0], height, width, self.channels)
        for (node, source), layer in self.edges.items():
            if source < 2:
                shape = self.edge_input_shape(source, s0_shape, s1_shape)
            else:
                shape = node_shape
            layer.build(shape)

    def build_inputs(self, s0_shape, s1_shape):
        """Builds the input preprocessing for the two input shapes."""
        self.pre0.build(s0_shape)
        self.pre1.build(s1_shape)

    def edge_input_shape(self, source, s0_shape, s1_shape):
        """Batch shape entering the ops of an edge leaving input `source` (0 or 1)."""
        del source, s0_shape
        return (s1_shape[0], s1_shape[1], s1_shape[2], self.channels)

    def _stride(self, source):
        return 2 if self.reduction and source < 2 else 1

    def _build_preprocessing(self):
        if self.reduction_prev:
            self.pre0 = FactorizedReduce(self.channels, affine=self.affine, name="pre0")
        else:
            self.pre0 = ConvOp(self.channels, ((1, 1),), order=self.order,
                               affine=self.affine, name="pre0")
        self.pre1 = ConvOp(self.channels, ((1, 1),), order=self.order, affine=self.affine,
                           name="pre1")

    @property
    def num_edges(self):
        return num_edges(self.steps)

    @property
    def output_channels(self):
        return self.channels * len(self.concat)

    def preprocess(self, s0, s1, training=None):
        """Returns the two input states after preprocessing."""
        return [self.pre0(s0, training=training), self.pre1(s1, training=training)]

    def edge_input(self, node, source, state, training=None):
        """Hook for cells that transform an input per edge (see MultiScaleCell)."""
        del node, source, training
        return state

    def call(self, s0, s1, op_weights=None, training=None):
        if self.genotype is None and op_weights is None:
            raise ValueError(f"search cell {self.name} needs op_weights")
        states = self.preprocess(s0, s1, training=training)
        if op_weights is not None and self.genotype is None:
            op_weights = ops.unstack(op_weights, num=self.num_edges)
        for j in range(self.steps):
            total = None
            for (node, source), layer in self.edges.items():
                if node != j:
                    continue
                x = self.edge_input(node, source, states[source], training=training)
                if self.genotype is None:
                    y = layer(x, op_weights[self.edge_rows[(node, source)]],
                              training=training)
                else:
                    y = layer(x, training=training)
                total = y if total is None else total + y
            states.append(total)
        return ops.concatenate([states[i] for i in self.concat], axis=-1)

    def compute_output_shape(self, s0_shape, s1_shape, op_weights_shape=None):
        def reduce(size):
            return None if size is None or not self.reduction else out_size(size, 2)
        height = s1_shape[1] if not self.reduction else reduce(s1_shape[1])
        width = s1_shape[2] if not self.reduction else reduce(s1_shape[2])
        return (s1_shape[0], height, width, self.output_channels)

    def edge_macs(self, s0_shape, s1_shape):
        """MACs on every edge for (h, w, c) input shapes.

        Returns:
            {(node, source): int} for a fixed cell, {(node, source): [int per op]} for a
            search cell.
        """
        height, width = s1_shape[0], s1_shape[1]
        if self.reduction:
            height, width = out_size(height, 2), out_size(width, 2)
        node_shape = (height, width, self.channels)
        result = {}
        for (node, source), layer in self.edges.items():
            shape = self.edge_shape(source, node_shape, s0_shape, s1_shape)
            result[(node, source)] = (layer.count_macs_per_op(shape)
                                      if isinstance(layer, MixedOp)
                                      else layer.count_macs(shape))
        return result

    def count_macs(self, s0_shape, s1_shape):
        """MACs of a fixed cell (preprocessing and kept edges) for (h, w, c) inputs."""
        if self.genotype is None:
            raise ValueError("count_macs is for fixed cells; use edge_macs for search cells")
        return self.input_macs(s0_shape, s1_shape) + sum(
            self.edge_macs(s0_shape, s1_shape).values())

    def input_macs(self, s0_shape, s1_shape):
        """MACs of the preprocessing for (h, w, c) input shapes."""
        return self.pre0.count_macs(s0_shape) + self.pre1.count_macs(s1_shape)

    def edge_shape(self, source, node_shape, s0_shape, s1_shape):
        """(h, w, c) of the tensor entering the ops of an edge leaving `source`."""
        del s0_shape
        if source < 2:
            return (s1_shape[0], s1_shape[1], self.channels)
        return node_shape

    def get_config(self):
        config = super().get_config()
        config.update({
            "op_set": self.op_set, "steps": self.steps, "channels": self.channels,
            "reduction": self.reduction, "reduction_prev": self.reduction_prev,
            "genotype": None if self.genotype is None else self.genotype.to_json(),
            "affine": self.affine,
        })
        return config
