"""A DAG cell: the search cell (a MixedOp on every edge) and the same cell fixed."""

import keras
from keras import ops

from tf_nas_seg.ops.conv_op import ConvOp
from tf_nas_seg.ops.factorized_reduce import FactorizedReduce
from tf_nas_seg.ops.macs import out_size
from tf_nas_seg.ops.op_set import get_op_set
from tf_nas_seg.space.genotype import CellGenotype, num_edges
from tf_nas_seg.space.mixed_op import MixedOp


def node_size(s0_hw, s1_hw, reduction=False, multiscale=False):
    """(h, w) of a cell's nodes from the (h, w) of its inputs (None: dynamic).

    A cell's nodes have input 1's size, halved in a reduction cell; a multi-scale cell
    works at input 0's (the low-level map's) size.
    """
    if multiscale:
        return tuple(s0_hw)
    if reduction:
        return out_size(s1_hw[0], 2), out_size(s1_hw[1], 2)
    return tuple(s1_hw)


def edge_input_size(source, s0_hw, s1_hw, reduction=False, multiscale=False):
    """(h, w) of the tensor entering the ops of an edge leaving state `source`.

    Edges leaving the inputs (0, 1) read the preprocessed input, which has input 1's
    size (a reduction cell's stride-2 ops halve it); a multi-scale cell's inputs are
    projected at input 0's size. Edges leaving a node read it at the node size.
    """
    if source < 2 and not multiscale:
        return tuple(s1_hw)
    return node_size(s0_hw, s1_hw, reduction, multiscale)


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

    multiscale = False

    def build(self, s0_shape, s1_shape, op_weights_shape=None):
        self.build_inputs(s0_shape, s1_shape)
        for (node, source), layer in self.edges.items():
            layer.build((s1_shape[0],) + self.edge_size(source, s0_shape[1:3],
                                                        s1_shape[1:3]) + (self.channels,))

    def build_inputs(self, s0_shape, s1_shape):
        """Builds the input preprocessing for the two input shapes."""
        self.pre0.build(s0_shape)
        self.pre1.build(s1_shape)

    def node_size(self, s0_hw, s1_hw):
        """(h, w) of the nodes for inputs of these (h, w) (see `node_size`)."""
        return node_size(s0_hw, s1_hw, self.reduction, self.multiscale)

    def edge_size(self, source, s0_hw, s1_hw):
        """(h, w) entering the ops of an edge leaving `source` (see `edge_input_size`)."""
        return edge_input_size(source, s0_hw, s1_hw, self.reduction, self.multiscale)

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
        return ((s1_shape[0],) + self.node_size(s0_shape[1:3], s1_shape[1:3])
                + (self.output_channels,))

    def edge_macs(self, s0_shape, s1_shape):
        """MACs on every edge for (h, w, c) input shapes.

        Returns:
            {(node, source): int} for a fixed cell, {(node, source): [int per op]} for a
            search cell.
        """
        result = {}
        for (node, source), layer in self.edges.items():
            shape = self.edge_size(source, s0_shape[:2], s1_shape[:2]) + (self.channels,)
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

    def get_config(self):
        config = super().get_config()
        config.update({
            "op_set": self.op_set, "steps": self.steps, "channels": self.channels,
            "reduction": self.reduction, "reduction_prev": self.reduction_prev,
            "genotype": None if self.genotype is None else self.genotype.to_json(),
            "affine": self.affine,
        })
        return config
