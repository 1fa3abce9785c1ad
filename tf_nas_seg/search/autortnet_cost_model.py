"""Expected cost of an AutoRTNet supernet: kept cells weighted by their keep probability."""

import math

import numpy as np
from keras import ops

from tf_nas_seg.ops.conv_op import ConvOp
from tf_nas_seg.ops.factorized_reduce import FactorizedReduce
from tf_nas_seg.ops.macs import out_size
from tf_nas_seg.search.cost_model import COST_KINDS, UNITS, edge_costs
from tf_nas_seg.search.latency_table import LatencyTable


class AutoRTNetCostModel:
    """E[cost] = fixed + sum_h sum_k P(cell k of h is kept) * cost(cell k of h).

    AutoRTNet eq. (4) and (7): a cell costs the sum over its edges of sum_o m_o * c_o
    (here m = softmax(alpha), the expectation of the hard Gumbel sample, so the term is
    the exact expectation over sampled architectures), plus its input preprocessing
    (1x1 convs, or a factorized reduce when an input has twice the size). Cell k of
    hyper-cell h is kept when the exit is at k or later: P = sum_(j >= k) softmax(beta_h)_j.
    The two-input rule makes the first cell of hyper-cell h+1 preprocess x_(k-1) with a
    factorized reduce when hyper-cell h exits at its reduction cell (probability
    softmax(beta_h)_0), else with a 1x1 conv. The costs describe the derived network
    (`build_autortnet_network`) that a sample corresponds to. The aggregation cell's
    searched edges carry no cost term (AutoRTNet); the stem, the aggregation input
    projections, the multi-scale cell and the head are the constant `fixed`.
    With kind "latency" only the searched ops are read from the table (as for CAS);
    preprocessing and fixed layers then count zero.

    Attributes:
        kind: "params", "macs" or "latency".
        unit: Human-readable unit.
        fixed: Cost of the layers that are not searched.
        hyper: Per hyper-cell dict: names of its logits ("reduce", "normal", "beta"),
            edge cost matrices ("reduce_matrix", "normal_matrix", [edges, ops]), input
            costs per cell ("inputs", cell 0 excluded for h > 0), and for h > 0 the
            first cell's input cost after a depth-1 ("after_reduce") or deeper
            ("after_normal") previous hyper-cell.
    """

    mode = "autortnet"

    def __init__(self, kind, unit, fixed, hyper):
        self.kind = kind
        self.unit = unit
        self.fixed = float(fixed)
        self.hyper = hyper

    def _evaluate(self, probabilities, matrices, xp_sum, xp_cumsum):
        total = self.fixed
        prev_p0 = None
        for spec, (reduce_matrix, normal_matrix) in zip(self.hyper, matrices):
            p = probabilities[spec["beta"]]
            keep = 1.0 - xp_cumsum(p) + p  # keep_k = sum_(j >= k) p_j
            first = xp_sum(reduce_matrix * probabilities[spec["reduce"]])
            if prev_p0 is None:
                first = first + spec["inputs"][0]
            else:
                first = (first + prev_p0 * spec["after_reduce"]
                         + (1.0 - prev_p0) * spec["after_normal"])
            normal = xp_sum(normal_matrix * probabilities[spec["normal"]])
            total = total + first
            for k in range(1, len(spec["inputs"])):
                total = total + keep[k] * (normal + spec["inputs"][k])
            prev_p0 = p[0]
        return total

    def __call__(self, probabilities):
        matrices = [(ops.convert_to_tensor(s["reduce_matrix"], dtype="float32"),
                     ops.convert_to_tensor(s["normal_matrix"], dtype="float32"))
                    for s in self.hyper]
        total = self._evaluate(probabilities, matrices, ops.sum,
                               lambda v: ops.cumsum(v, axis=-1))
        return ops.convert_to_tensor(total, dtype="float32")

    def numpy(self, probabilities):
        """The same expectation with NumPy probabilities (for reports and tests)."""
        probs = {k: np.asarray(v, dtype=np.float64) for k, v in probabilities.items()}
        matrices = [(s["reduce_matrix"], s["normal_matrix"]) for s in self.hyper]
        return float(self._evaluate(probs, matrices, np.sum, np.cumsum))

    def cost_of(self, genotype):
        """Cost the model predicts for a derived network (its depths and kept edges)."""
        macro = genotype.macro_dict
        total = self.fixed
        prev_depth = None
        for h, (spec, depth) in enumerate(zip(self.hyper, macro["depths"])):
            for k in range(depth):
                cell = genotype.cell(f"reduce_{h + 1}" if k == 0 else f"normal_{h + 1}")
                matrix = spec["reduce_matrix" if k == 0 else "normal_matrix"]
                if k == 0 and prev_depth is not None:
                    total += spec["after_reduce" if prev_depth == 1 else "after_normal"]
                else:
                    total += spec["inputs"][k]
                total += _kept_edges_cost(cell, matrix)
            prev_depth = depth
        return float(total)

    def to_json(self):
        return {"kind": self.kind, "mode": self.mode, "unit": self.unit,
                "fixed": self.fixed,
                "hyper_cells": [{k: (v.tolist() if isinstance(v, np.ndarray) else v)
                                 for k, v in s.items()} for s in self.hyper]}


def _kept_edges_cost(cell, matrix):
    from tf_nas_seg.ops.op_set import get_op_set

    names = get_op_set(cell.op_set).ops
    total, row = 0.0, 0
    rows = {}
    for j in range(len(cell.nodes)):
        for i in range(j + 2):
            rows[(j, i)] = row
            row += 1
    for j, node in enumerate(cell.nodes):
        for edge in node:
            total += float(matrix[rows[(j, edge.source)], names.index(edge.op)])
    return total


def _preprocess_cost(kind, layer, shape):
    """Cost of a 1x1 conv or factorized reduce at input (h, w, c), without building it."""
    if kind == "latency":
        return 0.0
    if kind == "params":
        # No bias: a 1x1 conv's weights are its MACs at one output pixel.
        return float(layer.count_macs((1, 1, shape[2])))
    return float(layer.count_macs(shape))


def autortnet_cost_model(supernet, kind, height, width, latency_table=None):
    """Builds the AutoRTNetCostModel of a built `AutoRTNetSupernet` at height x width.

    Args:
        supernet: A built AutoRTNetSupernet.
        kind: "params", "macs" or "latency".
        height: Input height the cost refers to (the target resolution).
        width: Input width.
        latency_table: A LatencyTable or a path, required for kind "latency".
    """
    if kind not in COST_KINDS:
        raise ValueError(f"cost must be one of {COST_KINDS}, got {kind!r}")
    table = None
    if kind == "latency":
        table = (latency_table if isinstance(latency_table, LatencyTable)
                 else LatencyTable.load(latency_table))
    unit, scale = UNITS[kind]
    layout = supernet.layout
    stem = supernet.layout.channels
    s0 = (out_size(height, 2), out_size(width, 2), stem)
    s1 = (out_size(s0[0], 2), out_size(s0[1], 2), stem)
    fixed = {"params": 0.0, "macs": 0.0, "latency": 0.0}
    fixed["macs"] = (supernet.stem0.count_macs((height, width, 3))
                     + supernet.stem1.count_macs(s0))
    hyper, outputs = [], []
    before = s0  # input s0 of the current hyper-cell
    for h, hyper_cell in enumerate(supernet.hyper_cells):
        c = hyper_cell.channels
        out = (out_size(s1[0], 2), out_size(s1[1], 2), hyper_cell.output_channels)
        cells = hyper_cell.cells

        def matrix(cell, a, b):
            m = np.zeros((cell.num_edges, len(cell.edges[(0, 0)].candidates)))
            node_shape = (out[0], out[1], c)
            for (node, source), layer in cell.edges.items():
                shape = cell.edge_shape(source, node_shape, a, b)
                m[cell.edge_rows[(node, source)]] = edge_costs(
                    layer, kind, shape, table, cell.op_set, layer.strides)
            return m

        conv = ConvOp(c, ((1, 1),))
        reduce_ = FactorizedReduce(c)
        pre1_first = _preprocess_cost(kind, conv, s1)
        inputs = [0.0] * len(cells)
        spec = {"reduce": supernet.alpha_reduce[h].name,
                "normal": supernet.alpha_normal[h].name, "beta": supernet.betas[h].name,
                "reduce_matrix": matrix(cells[0], before, s1) * scale,
                "normal_matrix": (matrix(cells[1], s1, out) * scale if len(cells) > 1
                                  else np.zeros((cells[0].num_edges,
                                                 len(cells[0].edges[(0, 0)].candidates))))}
        if h == 0:
            inputs[0] = (_preprocess_cost(kind, reduce_, before) + pre1_first) * scale
        else:
            # Previous hyper-cell depth 1: x_(k-1) is its input (twice the size).
            spec["after_reduce"] = (_preprocess_cost(kind, reduce_, before)
                                    + pre1_first) * scale
            spec["after_normal"] = (_preprocess_cost(kind, conv, s1) + pre1_first) * scale
        for k in range(1, len(cells)):
            pre0 = (_preprocess_cost(kind, reduce_, s1) if k == 1
                    else _preprocess_cost(kind, conv, out))
            inputs[k] = (pre0 + _preprocess_cost(kind, conv, out)) * scale
        spec["inputs"] = inputs
        hyper.append(spec)
        outputs.append(out)
        before, s1 = s1, out
    agg, ms_cell, head = supernet.aggregation, supernet.ms_cell, supernet.head
    low = outputs[0][:2] + (agg.output_channels,)
    fixed["macs"] += (agg.input_macs(outputs) + ms_cell.count_macs(low, outputs[-1])
                      + head.count_macs(low[:2] + (ms_cell.output_channels,)))
    fixed["params"] = float(sum(
        math.prod(w.shape) for layer in (supernet.stem0, supernet.stem1, ms_cell, head,
                                         *agg.projections)
        for w in layer.trainable_weights))
    return AutoRTNetCostModel(kind, unit, fixed[kind] * scale, hyper)
