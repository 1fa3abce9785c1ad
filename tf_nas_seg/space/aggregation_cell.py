"""The AutoRTNet aggregation cell: a searched DAG fusing the three hyper-cell outputs."""

import keras
from keras import ops

from tf_nas_seg.ops.conv_op import ConvOp
from tf_nas_seg.ops.macs import out_size
from tf_nas_seg.ops.op_set import get_op_set
from tf_nas_seg.ops.resize_like import ResizeLike
from tf_nas_seg.space.mixed_op import MixedOp

# The aggregation cell of AutoRTNet Fig. 4 has 7 nodes and 7 edges, some with stride 2;
# the text does not give the wiring, so this is ours (arguments of the layer): nodes 0,
# 1, 2 are the three hyper-cell outputs (strides 8, 16, 32, after a 1x1 projection to
# the cell width), nodes 3-6 are intermediate. Each edge is (source, target, stride).
#   3 = o(0)                          stride 8   branch 1
#   4 = o(1) + o(3, s=2)              stride 16  branch 2
#   5 = o(2) + o(4, s=2)              stride 32
#   6 = o(5) + o(4, s=2)              stride 32  branch 3
AGGREGATION_EDGES = ((0, 3, 1), (1, 4, 1), (3, 4, 2), (2, 5, 1), (4, 5, 2), (5, 6, 1),
                     (4, 6, 2))
AGGREGATION_OUTPUTS = (3, 4, 6)


def aggregation_node_sizes(edges, input_sizes):
    """{node: (h, w)} of an aggregation DAG from the (h, w, ...) of its inputs.

    A node takes the size of the first edge entering it (the DAG's edges agree, see
    AGGREGATION_EDGES); a stride-2 edge halves its source's size. None stays None.
    """
    sizes = {i: (s[0], s[1]) for i, s in enumerate(input_sizes)}
    for source, target, stride in edges:
        h, w = sizes[source]
        sizes.setdefault(target, (out_size(h, stride), out_size(w, stride)))
    return sizes


@keras.saving.register_keras_serializable(package="tf_nas_seg")
class AggregationCell(keras.layers.Layer):
    """AutoRTNet Fig. 4: multi-scale inputs, one op per edge, concatenated branches.

    Each input is projected to `channels` by a 1x1 conv-BN-ReLU. A node sums its
    incoming edges; an edge applies one op of the aggregation op set (search: a
    `MixedOp` weighted by one row of `op_weights`), with stride 2 on the downsampling
    edges. The output concatenates the `outputs` nodes, each bilinearly resized to the
    size of the first one. Every edge is kept (no top-k), as the DAG is fixed; only the
    op on each edge is searched, without a latency term.

    Args:
        op_set: Name of the op set (the 5-op "aggregation" set).
        channels: Width of every node.
        edges: ((source, target, stride), ...) in evaluation order; nodes
            0..num_inputs-1 are the inputs.
        outputs: Nodes concatenated into the output (the branch ends).
        num_inputs: Number of inputs.
        ops: For a fixed cell, the op name of every edge; None to search.
        affine: Learn BN scale and offset (default: only in fixed cells).
    """

    def __init__(self, op_set="aggregation", channels=32, edges=None, outputs=None,
                 num_inputs=3, ops=None, affine=None, **kwargs):
        super().__init__(**kwargs)
        self.op_set = op_set
        self.channels = int(channels)
        self.edge_list = tuple(tuple(int(v) for v in e) for e in (edges or AGGREGATION_EDGES))
        self.outputs = tuple(int(o) for o in (outputs or AGGREGATION_OUTPUTS))
        self.num_inputs = int(num_inputs)
        self.ops = None if ops is None else tuple(ops)
        self.affine = (self.ops is not None) if affine is None else bool(affine)
        _check_dag(self.edge_list, self.outputs, self.num_inputs, self.ops, op_set)
        spec = get_op_set(op_set)
        self.projections = [ConvOp(self.channels, ((1, 1),), affine=self.affine,
                                   name=f"proj_{i}") for i in range(self.num_inputs)]
        self.edge_layers = []
        for e, (source, target, stride) in enumerate(self.edge_list):
            name = f"edge_{source}_{target}"
            if self.ops is None:
                self.edge_layers.append(MixedOp(op_set, self.channels, stride,
                                                affine=self.affine, name=name))
            else:
                layer = spec.build(self.ops[e], self.channels, stride, affine=self.affine)
                self.edge_layers.append(layer)
        self.resize = ResizeLike(name="align")

    @property
    def num_edges(self):
        return len(self.edge_list)

    @property
    def output_channels(self):
        return self.channels * len(self.outputs)

    def node_shapes(self, input_shapes):
        """(h, w) of every node from the (h, w, ...) of the inputs."""
        return aggregation_node_sizes(self.edge_list, input_shapes)

    def build(self, inputs_shape, op_weights_shape=None):
        for projection, shape in zip(self.projections, inputs_shape):
            projection.build(shape)
        sizes = self.node_shapes([s[1:] for s in inputs_shape])
        batch = inputs_shape[0][0]
        for (source, _, _), layer in zip(self.edge_list, self.edge_layers):
            h, w = sizes[source]
            layer.build((batch, h, w, self.channels))

    def call(self, inputs, op_weights=None, training=None):
        if self.ops is None and op_weights is None:
            raise ValueError(f"search aggregation cell {self.name} needs op_weights")
        states = {i: p(x, training=training)
                  for i, (p, x) in enumerate(zip(self.projections, inputs))}
        rows = (ops.unstack(op_weights, num=self.num_edges) if self.ops is None
                else [None] * self.num_edges)
        for (source, target, _), layer, row in zip(self.edge_list, self.edge_layers, rows):
            x = states[source]
            y = (layer(x, row, training=training) if self.ops is None
                 else layer(x, training=training))
            states[target] = y if target not in states else states[target] + y
        first = states[self.outputs[0]]
        return ops.concatenate([first] + [self.resize(states[o], first)
                                          for o in self.outputs[1:]], axis=-1)

    def compute_output_shape(self, inputs_shape, op_weights_shape=None):
        sizes = self.node_shapes([s[1:] for s in inputs_shape])
        h, w = sizes[self.outputs[0]]
        return (inputs_shape[0][0], h, w, self.output_channels)

    def input_macs(self, input_shapes):
        """MACs of the 1x1 input projections for (h, w, c) inputs."""
        return sum(p.count_macs(s) for p, s in zip(self.projections, input_shapes))

    def edge_macs(self, input_shapes):
        """MACs per edge: an int (fixed cell) or a list per op (search cell)."""
        sizes = self.node_shapes(input_shapes)
        result = []
        for (source, _, _), layer in zip(self.edge_list, self.edge_layers):
            shape = sizes[source] + (self.channels,)
            result.append(layer.count_macs_per_op(shape) if self.ops is None
                          else layer.count_macs(shape))
        return result

    def count_macs(self, input_shapes):
        """MACs of a fixed cell (projections and edges) for (h, w, c) inputs."""
        if self.ops is None:
            raise ValueError("count_macs is for fixed cells; use edge_macs when searching")
        return self.input_macs(input_shapes) + sum(self.edge_macs(input_shapes))

    def get_config(self):
        config = super().get_config()
        config.update({"op_set": self.op_set, "channels": self.channels,
                       "edges": [list(e) for e in self.edge_list],
                       "outputs": list(self.outputs), "num_inputs": self.num_inputs,
                       "ops": None if self.ops is None else list(self.ops),
                       "affine": self.affine})
        return config


def check_aggregation(aggregation, num_inputs=3):
    """(op_set, edges, outputs, ops) of a derived aggregation cell as a genotype's macro
    records it ({"op_set", "edges": [[source, target, stride], ...], "outputs", "ops"}),
    checked; ValueError naming what is wrong (types, then the DAG, as the layer's)."""
    from tf_nas_seg.errors import brief
    from tf_nas_seg.ops.op_set import OP_SETS

    def integers(values, count=None):
        return (isinstance(values, (list, tuple)) and values
                and (count is None or len(values) == count)
                and all(isinstance(v, int) and not isinstance(v, bool) for v in values))

    op_set = aggregation.get("op_set")
    if not isinstance(op_set, str) or op_set not in OP_SETS:
        raise ValueError(f"op_set: unknown op set {brief(op_set)}; valid: {sorted(OP_SETS)}")
    edges = aggregation.get("edges")
    if not isinstance(edges, (list, tuple)) or not edges or not all(
            integers(e, 3) for e in edges):
        raise ValueError(f"edges: expected [source, target, stride] integer triples, got "
                         f"{brief(edges)}")
    outputs = aggregation.get("outputs")
    if not integers(outputs):
        raise ValueError(f"outputs: expected a non-empty list of node indices, got "
                         f"{brief(outputs)}")
    op_names = aggregation.get("ops")
    if not isinstance(op_names, (list, tuple)) or not all(isinstance(o, str)
                                                          for o in op_names):
        raise ValueError(f"ops: expected one op name per edge, got {brief(op_names)}")
    edges = tuple(tuple(e) for e in edges)
    _check_dag(edges, tuple(outputs), num_inputs, tuple(op_names), op_set)
    return op_set, edges, tuple(outputs), tuple(op_names)


def _check_dag(edges, outputs, num_inputs, op_names, op_set):
    """Edges go from an existing node forward; every output and target is reachable."""
    known = set(range(num_inputs))
    for k, (source, target, stride) in enumerate(edges):
        if source not in known or target < num_inputs or target <= source:
            raise ValueError(f"aggregation edge {k} ({source} -> {target}) must leave an "
                             f"input or an earlier node and enter a later node >= "
                             f"{num_inputs}")
        if stride not in (1, 2):
            raise ValueError(f"aggregation edge {k}: stride must be 1 or 2, got {stride}")
        known.add(target)
    missing = [o for o in outputs if o not in known or o < num_inputs]
    if missing or not outputs:
        raise ValueError(f"aggregation outputs {list(outputs)} must be intermediate nodes "
                         f"of the DAG; nodes are {sorted(known)}")
    if op_names is not None:
        valid = get_op_set(op_set).ops
        if len(op_names) != len(edges) or any(o not in valid for o in op_names):
            from tf_nas_seg.errors import brief

            raise ValueError(f"a fixed aggregation cell needs one op of {list(valid)} per "
                             f"edge ({len(edges)}), got {brief(list(op_names))}")
