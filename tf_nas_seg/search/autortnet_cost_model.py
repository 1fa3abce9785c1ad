"""Expected cost of an AutoRTNet supernet: kept cells weighted by their keep probability."""

import math

import numpy as np
from keras import ops

from tf_nas_seg.ops.conv_op import ConvOp
from tf_nas_seg.ops.factorized_reduce import FactorizedReduce
from tf_nas_seg.search.cost_model import COST_KINDS, UNITS
from tf_nas_seg.latency.table import LatencyTable
from tf_nas_seg.errors import ConfigError


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

    With kind "latency" every term is read from the table through the keys of the
    AutoRTNet latency profile (`tf_nas_seg.latency.autortnet_profile`, the walker the
    table builder measures, dilation included): per-edge op latencies in the matrices,
    each cell's preprocessing, node sums and concatenation in its input cost (paid when
    the cell is kept), and in `fixed` the stem, the aggregation cell's projections, node
    sums, resizes and concatenation, the multi-scale module, the head and the cost of
    running one compiled network, all through the table's calibration (offset + scale
    * sum). The aggregation cell's searched ops stay out of the expectation (no latency
    term, as the paper), but `cost_of` a derived network adds them from
    `aggregation_matrix`, so it is the table's prediction of every layer the network
    runs (`LatencyTable.predict` of the profile's network entries).

    Attributes:
        kind: "params", "macs" or "latency".
        unit: Human-readable unit.
        fixed: Cost of the layers that are not searched.
        hyper: Per hyper-cell dict: names of its logits ("reduce", "normal", "beta"),
            edge cost matrices ("reduce_matrix", "normal_matrix", [edges, ops]), input
            costs per cell ("inputs", cell 0 excluded for h > 0), and for h > 0 the
            first cell's input cost after a depth-1 ("after_reduce") or deeper
            ("after_normal") previous hyper-cell.
        aggregation_matrix: Latency only: [aggregation edges, ops] cost of each op of
            the aggregation cell (not in the expectation; `cost_of` adds the derived
            network's ops); None for params and MACs.
        aggregation_op_set: Op set of the aggregation cell's columns.
    """

    mode = "autortnet"

    def __init__(self, kind, unit, fixed, hyper, aggregation_matrix=None,
                 aggregation_op_set=None):
        self.kind = kind
        self.unit = unit
        self.fixed = float(fixed)
        self.hyper = hyper
        self.aggregation_matrix = (None if aggregation_matrix is None
                                   else np.asarray(aggregation_matrix, dtype=np.float64))
        self.aggregation_op_set = aggregation_op_set

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
        """Cost the model predicts for a derived network (its depths and kept edges).

        Latency: every layer the network runs, its aggregation ops included (the table's
        prediction of the network). Params and MACs: without the aggregation cell's
        searched edges, as the expectation.
        """
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
        if self.aggregation_matrix is not None:
            from tf_nas_seg.ops.op_set import get_op_set

            names = get_op_set(self.aggregation_op_set).ops
            aggregation = macro["aggregation"]
            for e, op in enumerate(aggregation["ops"]):
                total += float(self.aggregation_matrix[e, names.index(op)])
        return float(total)

    def to_json(self):
        data = {"kind": self.kind, "mode": self.mode, "unit": self.unit,
                "fixed": self.fixed,
                "hyper_cells": [{k: (v.tolist() if isinstance(v, np.ndarray) else v)
                                 for k, v in s.items()} for s in self.hyper]}
        if self.aggregation_matrix is not None:
            data["aggregation"] = {"op_set": self.aggregation_op_set,
                                   "matrix": self.aggregation_matrix.tolist()}
        return data


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
    """Params or MACs of a 1x1 conv or factorized reduce at input (h, w, c), unbuilt."""
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
        raise ConfigError(f"cost must be one of {COST_KINDS}, got {kind!r}")
    if kind == "latency":
        table = (latency_table if isinstance(latency_table, LatencyTable)
                 else LatencyTable.load(latency_table))
        return _latency_cost_model(supernet, table, height, width)
    unit, scale = UNITS[kind]
    plan = supernet.network_plan(height, width)
    fixed = {"params": 0.0, "macs": 0.0, "latency": 0.0}
    fixed["macs"] = (supernet.stem0.count_macs(plan.image_shape)
                     + supernet.stem1.count_macs(plan.stem.output_shapes[0]))
    hyper = []
    groups = plan.hyper_cells()
    for h, (hyper_cell, plans) in enumerate(zip(supernet.hyper_cells, groups)):
        c = hyper_cell.channels
        cells = hyper_cell.cells
        first = plans[0]
        s1, out = first.s1, first.output_shape
        # Input s0 of the hyper-cell: x_(-1) of the previous one when it ends at its
        # reduction cell (the previous hyper-cell's input), the stem's first conv for h 0.
        before = first.s0 if h == 0 else groups[h - 1][0].s1

        def matrix(cell, cell_plan):
            m = np.zeros((cell.num_edges, len(cell.edges[(0, 0)].candidates)))
            for (node, source), layer in cell.edges.items():
                shape = cell_plan.edge_shape(source)
                m[cell.edge_rows[(node, source)]] = (
                    layer.count_macs_per_op(shape) if kind == "macs"
                    else layer.count_params_per_op())
            return m

        conv = ConvOp(c, ((1, 1),))
        reduce_ = FactorizedReduce(c)
        pre1_first = _preprocess_cost(kind, conv, s1)
        inputs = [0.0] * len(cells)
        spec = {"reduce": supernet.alpha_reduce[h].name,
                "normal": supernet.alpha_normal[h].name, "beta": supernet.betas[h].name,
                "reduce_matrix": matrix(cells[0], first) * scale,
                "normal_matrix": (matrix(cells[1], plans[1]) * scale if len(cells) > 1
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
    agg, ms_cell, head = supernet.aggregation, supernet.ms_cell, supernet.head
    fixed["macs"] += (agg.input_macs(plan.aggregation.input_shapes)
                      + ms_cell.count_macs(plan.ms_cell.s0, plan.ms_cell.s1)
                      + head.count_macs(plan.head.features))
    fixed["params"] = float(sum(
        math.prod(w.shape) for layer in (supernet.stem0, supernet.stem1, ms_cell, head,
                                         *agg.projections)
        for w in layer.trainable_weights))
    return AutoRTNetCostModel(kind, unit, fixed[kind] * scale, hyper)


def _latency_cost_model(supernet, table, height, width):
    """The latency AutoRTNetCostModel: every term read from `table` (ms, calibrated).

    Keys come from the AutoRTNet latency profile's walker, the one the table builder
    measures: the deepest network gives each cell position's edges and input costs
    (and, after a previous hyper-cell of two or more cells, the 1x1 preprocessing of
    the next reduction cell), the shallowest the factorized reduce the two-input rule
    gives a reduction cell after a depth-1 hyper-cell. A key the table lacks is a
    LatencyTableError naming it and the bin/latency_table command.
    """
    from tf_nas_seg.ops.op_set import get_op_set
    from tf_nas_seg.latency.plan_entries import AGGREGATION_TYPE, plan_sections

    layout = supernet.layout
    cell_op_set = supernet.cell_logits()["reduce_1"][1]
    agg_op_set = supernet.aggregation.op_set
    n_ops = len(get_op_set(cell_op_set).ops)
    edges = supernet.hyper_cells[0].cells[0].num_edges
    scale, offset = table.calibration

    def cell_costs(entries):
        """(edge matrix, fixed ms) of one cell's entries, uncalibrated."""
        matrix, fixed = np.zeros((edges, n_ops)), 0.0
        for entry in entries:
            ms = table.lookup(entry.key)
            if entry.edge is None:
                fixed += ms
            else:
                matrix[entry.edge.row, entry.edge.op_index] += ms
        return matrix, fixed

    count = len(layout.hyper_cells)
    deepest = plan_sections(supernet.network_plan(height, width))
    shallowest = plan_sections(supernet.network_plan(height, width, (1,) * count))
    hyper = []
    for h, cells in enumerate(layout.hyper_cells):
        spec = {"reduce": supernet.alpha_reduce[h].name,
                "normal": supernet.alpha_normal[h].name, "beta": supernet.betas[h].name,
                "normal_matrix": np.zeros((edges, n_ops)), "inputs": [0.0] * cells}
        normal = None
        for cell, entries in (c for c in deepest["cells"] if c[0].group == h):
            k = cell.index
            matrix, fixed = cell_costs(entries)
            if k == 0:
                spec["reduce_matrix"] = matrix * scale
                if h == 0:
                    spec["inputs"][0] = fixed * scale
                else:  # after a previous hyper-cell of two or more cells
                    spec["after_normal"] = fixed * scale
                continue
            # Normal cells share one logit tensor and see the same edge shapes.
            if normal is not None and not np.array_equal(matrix, normal):
                raise AssertionError(f"normal cells of hyper-cell {h + 1} differ in shape")
            normal = matrix
            spec["normal_matrix"] = matrix * scale
            spec["inputs"][k] = fixed * scale
        if h > 0:
            # The previous hyper-cell ended at its reduction cell: input 0 (its x_(-1))
            # has twice the size and is reduced (the two-input rule).
            entries = next(e for c, e in shallowest["cells"] if c.group == h)
            spec["after_reduce"] = cell_costs(entries)[1] * scale
            if layout.hyper_cells[h - 1] == 1:  # never deeper
                spec["after_normal"] = spec["after_reduce"]
        hyper.append(spec)
    # Outside the hyper-cells everything is fixed, except the aggregation cell's ops.
    fixed = table.network_overhead_ms
    aggregation = np.zeros((supernet.aggregation.num_edges, len(get_op_set(agg_op_set).ops)))
    for part in ("stem", "aggregation", "multiscale", "head"):
        for entry in deepest[part]:
            ms = table.lookup(entry.key)
            if entry.edge is not None and entry.edge.cell_type == AGGREGATION_TYPE:
                aggregation[entry.edge.row, entry.edge.op_index] += ms
            else:
                fixed += ms
    unit, _ = UNITS["latency"]
    return AutoRTNetCostModel("latency", unit, offset + scale * fixed, hyper,
                              aggregation * scale, agg_op_set)
