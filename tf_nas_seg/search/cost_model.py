"""Expected architecture cost: per-op cost matrices measured at the shapes each op sees."""

import math

import numpy as np
from keras import ops

from tf_nas_seg.ops.op_set import NONE_OPS, get_op_set
from tf_nas_seg.latency.table import LatencyTable, network_key
from tf_nas_seg.space.mixed_op import MixedOp
from tf_nas_seg.errors import ConfigError

COST_KINDS = ("params", "macs", "latency")
COST_MODES = ("per_op", "cas")
# Natural units, so that lambda reads the same across search spaces: millions of
# parameters, GMACs, milliseconds.
UNITS = {"params": ("M params", 1e-6), "macs": ("GMACs", 1e-9), "latency": ("ms", 1.0)}


class CostModel:
    """cost = fixed + sum over logit tensors of sum(matrix * probabilities).

    Attributes:
        kind: "params", "macs" or "latency".
        mode: "per_op" (c_(e,o): op o's own cost on edge e) or "cas" (c_o = c'_o - c'_id,
            CAS sec. 4.1: the whole-network cost with op o on every edge minus the same
            with the identity, the same for every edge).
        matrices: {logit name: [num_edges, num_ops] numpy array}, in `unit`.
        fixed: Cost of everything that is not a searched edge, in `unit`.
        unit: Human-readable unit.
    """

    def __init__(self, kind, mode, matrices, fixed, unit):
        self.kind = kind
        self.mode = mode
        self.matrices = {k: np.asarray(v, dtype=np.float32) for k, v in matrices.items()}
        self.fixed = float(fixed)
        self.unit = unit

    def __call__(self, probabilities):
        total = ops.convert_to_tensor(self.fixed, dtype="float32")
        for name, matrix in self.matrices.items():
            total = total + ops.sum(ops.convert_to_tensor(matrix) * probabilities[name])
        return total

    def numpy(self, probabilities):
        """The same expectation with NumPy probabilities (for reports and tests)."""
        return self.fixed + sum(float(np.sum(self.matrices[k] * np.asarray(p)))
                                for k, p in probabilities.items())

    def to_json(self):
        return {"kind": self.kind, "mode": self.mode, "unit": self.unit,
                "fixed": self.fixed,
                "matrices": {k: v.tolist() for k, v in self.matrices.items()}}


def _edge_costs(layer, kind, shape):
    if kind == "macs":
        return layer.count_macs_per_op(shape)
    return layer.count_params_per_op()


def _latency_matrices(supernet, table, height, width, matrices):
    """Fills `matrices` with per-edge op latencies and returns the fixed latency (ms).

    SPEC section 2: the expected latency of a cell is sum_edges sum_o p_o LAT(o)
    (AutoRTNet eq. 4, CAS eq. 5 with c_o = LAT(o)); the network's is the sum over its
    cells plus its fixed layers (stem, preprocessing, node sums, concatenations, resizes,
    classifier) and the cost of running one compiled network, mapped through the table's
    calibration (offset + scale * sum, see `LatencyTable.calibration`). Every key comes
    from the same walker the table builder measures (`tf_nas_seg.latency.cas_profile`).
    """
    from tf_nas_seg.latency.plan_entries import plan_entries

    entries = plan_entries(supernet.network_plan(height, width))
    fixed = table.network_overhead_ms
    scale, offset = table.calibration
    for entry in entries:
        ms = table.lookup(entry.key)
        if entry.edge is None:
            fixed += ms
            continue
        matrix = matrices[entry.edge.cell_type]
        if entry.edge.op_index is not None:
            matrix[entry.edge.row, entry.edge.op_index] += ms
        else:
            _, op_set, _ = supernet.cell_logits()[entry.edge.cell_type]
            paid = [name not in NONE_OPS for name in get_op_set(op_set).ops]
            matrix[entry.edge.row, paid] += ms
    for matrix in matrices.values():
        matrix *= scale
    return offset + scale * fixed


def cas_cost_model(supernet, kind, height, width, mode="per_op", latency_table=None):
    """Builds the CostModel of a built `CASSupernet` for inputs of height x width.

    Args:
        supernet: A built CASSupernet.
        kind: "params", "macs" or "latency".
        height: Input height the cost refers to (the target resolution).
        width: Input width.
        mode: "per_op" or "cas" (see CostModel).
        latency_table: A LatencyTable or a path, required for kind "latency".

    Returns:
        A CostModel over the supernet's logit tensors.
    """
    if kind not in COST_KINDS:
        raise ConfigError(f"cost must be one of {COST_KINDS}, got {kind!r}")
    if mode not in COST_MODES:
        raise ConfigError(f"cost_mode must be one of {COST_MODES}, got {mode!r}")
    table = None
    if kind == "latency":
        table = (latency_table if isinstance(latency_table, LatencyTable)
                 else LatencyTable.load(latency_table))
    unit, scale = UNITS[kind]
    logits = {t: v for t, (v, _, _) in supernet.cell_logits().items()}
    matrices = {t: np.zeros(tuple(v.shape)) for t, v in logits.items()}
    if kind == "latency":
        fixed = _latency_matrices(supernet, table, height, width, matrices)
    else:
        fixed = _counted_matrices(supernet, kind, height, width, matrices)
    if mode == "cas":
        matrices = _cas_differences(matrices, logits, supernet, table, height, width)
    matrices = {t: m * scale for t, m in matrices.items()}
    return CostModel(kind, mode, {logits[t].name: m for t, m in matrices.items()},
                     fixed * scale, unit)


def _counted_matrices(supernet, kind, height, width, matrices):
    """Fills `matrices` with exact per-edge params or MACs; returns the fixed count."""
    plan = supernet.network_plan(height, width)
    layers = supernet.layers_by_name()
    fixed_macs = supernet.stem.count_macs(plan.image_shape)
    edge_params = 0
    for cell_plan in plan.all_cells():
        cell = layers[cell_plan.name]
        a, b = cell_plan.s0, cell_plan.s1
        if cell.genotype is not None:
            fixed_macs += cell.count_macs(a, b)
            continue
        fixed_macs += cell.input_macs(a, b)
        for (node, source), layer in cell.edges.items():
            assert isinstance(layer, MixedOp)
            costs = _edge_costs(layer, kind, cell_plan.edge_shape(source))
            matrices[cell_plan.cell_type][cell.edge_rows[(node, source)]] += np.asarray(
                costs)
            edge_params += sum(layer.count_params_per_op())
    fixed_macs += supernet.head.count_macs(plan.head.features)
    all_params = sum(math.prod(v.shape) for v in supernet.weight_variables)
    return {"macs": fixed_macs, "params": all_params - edge_params}[kind]


def _cas_differences(matrices, logits, supernet, table, height, width):
    """c_o = c'_o - c'_id for every op of each op set, broadcast to every edge.

    Latency: c'_o is a measured whole network (`bin/latency_table --mode=network`).
    """
    from tf_nas_seg.latency.cas_profile import layout_signature

    by_set = {}
    for cell_type, (_, op_set, _) in supernet.cell_logits().items():
        by_set.setdefault(op_set, []).append(cell_type)
    result = {}
    for op_set, types in by_set.items():
        names = get_op_set(op_set).ops
        identity = names.index("skip_connect")
        if table is not None:
            signature = layout_signature(supernet.layout, supernet.num_classes)
            whole = np.array([table.lookup(network_key(op_set, name, signature, height,
                                                       width)) for name in names])
            diff = whole - whole[identity]
        else:
            # Params and MACs add up over layers, so the whole-network difference is the
            # sum over searched edges of each op's cost minus the identity's (the fixed
            # layers cancel); computed exactly, no network has to be built per op.
            total = sum(matrices[t].sum(axis=0) for t in types)
            diff = total - total[identity]
        for t in types:
            result[t] = np.tile(diff, (matrices[t].shape[0], 1))
    return result


def expected_hypercell_latency(cell_latencies, depth_probabilities):
    """AutoRTNet's expected latency of a hyper-cell (SPEC section 2, eq. 4 and 7).

    Choosing output edge k keeps cells 1..k and prunes the rest, so cell k runs with
    probability P(kept_k) = sum_{j >= k} p_j, and the expectation of eq. 7's sum of the
    kept cells' latencies is sum_k P(kept_k) * LAT(cell_k), where LAT(cell_k) is eq. 4's
    expected cell latency.

    Args:
        cell_latencies: [K] expected latency of each cell (tensor or array).
        depth_probabilities: [K] probabilities of the output edges (sum to 1).

    Returns:
        A scalar of the same kind as the inputs.
    """
    kept = ops.flip(ops.cumsum(ops.flip(depth_probabilities, axis=0), axis=0), axis=0)
    return ops.sum(kept * cell_latencies)
