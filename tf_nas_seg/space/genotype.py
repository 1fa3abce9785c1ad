"""Searched architectures as data: frozen genotypes, JSON files, pure derivation."""

import dataclasses
import json
import os
from typing import Mapping

import numpy as np

from tf_nas_seg.errors import UserError, brief
from tf_nas_seg.ops.op_set import NONE_OPS, OP_SETS
from tf_nas_seg.utils.json_files import read_json, write_json_atomic  # noqa: F401

SCHEMA_VERSION = 1
METHODS = ("cas", "autortnet", "darts")


class GenotypeError(UserError):
    """A genotype (file) is malformed; the message names the field and the fix."""


@dataclasses.dataclass(frozen=True)
class Edge:
    """One kept edge: `op` applied to state `source` (0, 1 = cell inputs, 2.. = nodes)."""

    op: str
    source: int


@dataclasses.dataclass(frozen=True)
class CellGenotype:
    """The fixed DAG of one cell type.

    Attributes:
        op_set: Name of the op set the ops come from.
        nodes: Per intermediate node, the tuple of its incoming edges.
        concat: States concatenated into the cell output (indices as in `Edge.source`).
    """

    op_set: str
    nodes: tuple
    concat: tuple

    def to_json(self):
        return {"op_set": self.op_set,
                "nodes": [[[e.op, e.source] for e in node] for node in self.nodes],
                "concat": list(self.concat)}

    @classmethod
    def from_json(cls, data, where="cell"):
        """Parses and validates a cell; errors name the field (`where`)."""
        if not isinstance(data, Mapping):
            raise GenotypeError(f"{where}: expected an object with op_set, nodes, concat")
        for key in ("op_set", "nodes", "concat"):
            if key not in data:
                raise GenotypeError(f"{where}.{key}: missing")
        op_set = data["op_set"]
        if not isinstance(op_set, str) or op_set not in OP_SETS:
            raise GenotypeError(f"{where}.op_set: unknown op set {brief(op_set)}; valid: "
                                f"{sorted(OP_SETS)}")
        ops = OP_SETS[op_set].ops
        nodes_raw = data["nodes"]
        if not isinstance(nodes_raw, list) or not nodes_raw:
            raise GenotypeError(f"{where}.nodes: expected a non-empty list of nodes")
        nodes = []
        for j, node in enumerate(nodes_raw):
            here = f"{where}.nodes[{j}]"
            if not isinstance(node, list) or not node:
                raise GenotypeError(f"{here}: expected a non-empty list of [op, source] edges")
            edges = []
            for k, edge in enumerate(node):
                if (not isinstance(edge, list) or len(edge) != 2
                        or not isinstance(edge[0], str) or isinstance(edge[1], bool)
                        or not isinstance(edge[1], int)):
                    raise GenotypeError(f"{here}[{k}]: expected [op_name, source_index], "
                                        f"got {brief(edge)}")
                op, source = edge
                if op not in ops or op in NONE_OPS:
                    raise GenotypeError(
                        f"{here}[{k}]: op {brief(op)} is not a derivable op of {op_set!r}; "
                        f"valid: {[o for o in ops if o not in NONE_OPS]}")
                if not 0 <= source < j + 2:
                    raise GenotypeError(f"{here}[{k}]: source {source} must be in [0, {j + 2}) "
                                        "(inputs 0, 1 and earlier nodes)")
                edges.append(Edge(op, source))
            nodes.append(tuple(edges))
        concat = data["concat"]
        if (not isinstance(concat, list) or not concat
                or any(isinstance(c, bool) or not isinstance(c, int) for c in concat)
                or any(not 0 <= c < len(nodes) + 2 for c in concat)):
            raise GenotypeError(f"{where}.concat: expected a non-empty list of state indices "
                                f"in [0, {len(nodes) + 2}), got {brief(concat)}")
        return cls(op_set=op_set, nodes=tuple(nodes), concat=tuple(concat))


@dataclasses.dataclass(frozen=True)
class Genotype:
    """A searched network: its cells plus method-level (macro) choices.

    Attributes:
        method: "cas", "autortnet" or "darts".
        cells: Tuple of (cell_type, CellGenotype) pairs, e.g. ("normal", ...),
            ("reduce", ...), ("multiscale", ...).
        macro: Canonical JSON text (sorted keys) of method-level choices such as the
            layout or hyper-cell depths; a string keeps the dataclass frozen and hashable.
    """

    method: str
    cells: tuple
    macro: str = "{}"

    @classmethod
    def create(cls, method, cells, macro=None):
        """Builds a genotype from a {cell_type: CellGenotype} dict and a macro dict."""
        return cls(method=method, cells=tuple(cells.items()),
                   macro=json.dumps(macro or {}, sort_keys=True))

    def cell(self, cell_type):
        """Returns the CellGenotype of `cell_type` or raises GenotypeError."""
        for name, cell in self.cells:
            if name == cell_type:
                return cell
        raise GenotypeError(f"genotype has no {cell_type!r} cell; it has "
                            f"{brief([name for name, _ in self.cells])}")

    def has_cell(self, cell_type):
        return any(name == cell_type for name, _ in self.cells)

    @property
    def macro_dict(self):
        return json.loads(self.macro)

    def to_json(self):
        return {"schema_version": SCHEMA_VERSION, "method": self.method,
                "cells": {name: cell.to_json() for name, cell in self.cells},
                "macro": self.macro_dict}

    @classmethod
    def from_json(cls, data):
        """Parses and validates a genotype dict (as written by `to_json`)."""
        if not isinstance(data, Mapping):
            raise GenotypeError("genotype: expected a JSON object")
        version = data.get("schema_version")
        if isinstance(version, bool) or version != SCHEMA_VERSION:
            raise GenotypeError(f"schema_version: expected {SCHEMA_VERSION}, got "
                                f"{brief(version)}; "
                                "this file was written by another version of tf_nas_seg")
        method = data.get("method")
        if not isinstance(method, str) or method not in METHODS:
            raise GenotypeError(f"method: expected one of {METHODS}, got {brief(method)}")
        cells = data.get("cells")
        if not isinstance(cells, Mapping) or not cells:
            raise GenotypeError("cells: expected a non-empty object of cell type -> cell")
        parsed = tuple((name, CellGenotype.from_json(cell, where=f"cells.{name if len(name) <= 60 else name[:57] + '...'}"))
                       for name, cell in cells.items())
        macro = data.get("macro", {})
        if not isinstance(macro, Mapping):
            raise GenotypeError("macro: expected an object")
        try:
            # finite numbers only (no NaN or Infinity), nested as JSON can be
            text = json.dumps(macro, sort_keys=True, allow_nan=False)
        except (ValueError, TypeError, RecursionError) as e:
            reason = "nested too deeply" if isinstance(e, RecursionError) else str(e)
            raise GenotypeError(f"macro: not a JSON object of finite values ({reason}); "
                                "use the genotype.json that bin/search wrote") from None
        return cls(method=method, cells=parsed, macro=text)

    def save(self, path):
        """Writes the genotype as JSON atomically (temp file + rename)."""
        write_json_atomic(path, self.to_json())

    @classmethod
    def load(cls, path):
        """Reads and validates a genotype file; errors name the file and the field."""
        data = read_json(path, GenotypeError, "pass the genotype.json that bin/search "
                         "wrote to its --run_dir")
        if data is None and not os.path.lexists(path):
            raise GenotypeError(f"genotype file {path} does not exist; pass the "
                                "genotype.json that bin/search wrote to its --run_dir")
        try:
            return cls.from_json(data)
        except GenotypeError as e:
            raise GenotypeError(f"genotype file {path}: {e}") from e


def num_edges(steps):
    """Edges of a cell with `steps` intermediate nodes and two inputs."""
    return sum(2 + j for j in range(steps))


def derive_cell(weights, op_set, steps, k=2, concat=None):
    """Derives a cell from its op weights (a pure function; DARTS/CAS rule).

    On each edge keep the op with the largest weight, excluding the no-edge op; then keep
    the `k` strongest incoming edges of each node, strength = that largest weight. Ties
    go to the lower op index / lower source index, so derivation is deterministic.

    Args:
        weights: [num_edges, num_ops] op weights (e.g. softmax of the logits), edges in
            the order (node 0: sources 0, 1; node 1: sources 0, 1, 2; ...).
        op_set: Name of the op set the columns refer to.
        steps: Intermediate nodes.
        k: Incoming edges kept per node (fewer if a node has fewer).
        concat: Output states; default all intermediate nodes.

    Returns:
        A CellGenotype.
    """
    spec = OP_SETS[op_set]
    weights = np.asarray(weights, dtype=np.float64)
    expected = (num_edges(steps), len(spec.ops))
    if weights.shape != expected:
        raise ValueError(f"weights have shape {weights.shape}, expected {expected} for "
                         f"{steps} nodes of op set {op_set!r}")
    keep = np.array([name not in NONE_OPS for name in spec.ops])
    masked = np.where(keep[None, :], weights, -np.inf)
    nodes, start = [], 0
    for j in range(steps):
        rows = masked[start:start + j + 2]
        best_op = np.argmax(rows, axis=1)
        strength = rows[np.arange(j + 2), best_op]
        order = sorted(range(j + 2), key=lambda i: (-strength[i], i))[:k]
        nodes.append(tuple(Edge(spec.ops[best_op[i]], int(i)) for i in sorted(order)))
        start += j + 2
    if concat is None:
        concat = tuple(range(2, steps + 2))
    return CellGenotype(op_set=op_set, nodes=tuple(nodes), concat=tuple(concat))
