"""Latency profile of CAS networks: the supernet's layers, derived networks, sampling."""

import numpy as np

from tf_nas_seg.networks.cas_layout import CASLayout
from tf_nas_seg.networks.cas_network import build_cas_network
from tf_nas_seg.networks.plan import cas_plan
from tf_nas_seg.ops.op_set import NONE_OPS, get_op_set
from tf_nas_seg.latency.plan_entries import KEEP_EDGES, plan_entries
from tf_nas_seg.latency.profiles import SpaceProfile, register_profile
from tf_nas_seg.latency.table import network_key
from tf_nas_seg.space.genotype import CellGenotype, Edge, Genotype
from tf_nas_seg.errors import ConfigError


def derivable_ops(op_set, probabilities=None):
    """(ops of `op_set` without the no-edge op, their normalised sampling probabilities)."""
    ops = [o for o in get_op_set(op_set).ops if o not in NONE_OPS]
    p = None if probabilities is None else (np.asarray(probabilities, dtype=np.float64)
                                            / np.sum(probabilities))
    return ops, p


def sample_cell(op_set, steps, rng, probabilities=None):
    """A random derived cell: KEEP_EDGES distinct sources per node, an op per edge.

    Args:
        op_set: Op set of the cell.
        steps: Intermediate nodes.
        rng: A numpy Generator.
        probabilities: Optional weights of the derivable ops (None: uniform).
    """
    ops, p = derivable_ops(op_set, probabilities)
    nodes = []
    for j in range(steps):
        sources = sorted(rng.choice(j + 2, size=min(KEEP_EDGES, j + 2), replace=False))
        nodes.append(tuple(Edge(ops[rng.choice(len(ops), p=p)], int(s)) for s in sources))
    return CellGenotype(op_set, tuple(nodes), tuple(range(2, steps + 2)))


def layout_signature(layout, num_classes):
    """Short text naming a CAS layout and head (part of whole-network keys)."""
    return (f"{layout.layout}-c{layout.channels}-s{layout.stem_channels}-n{layout.steps}"
            f"-l{layout.low_level_cell}-m{layout.ms_channels}x{layout.ms_steps}"
            f"-k{num_classes}")


def _full_cell(op_set, steps, op):
    """A cell with `op` on every edge of the full DAG (CAS's c'_o networks)."""
    # Built directly: `none` is not derivable, so CellGenotype.from_json would refuse it.
    nodes = tuple(tuple(Edge(op, i) for i in range(j + 2)) for j in range(steps))
    return CellGenotype(op_set, nodes, tuple(range(2, steps + 2)))


class CASProfile(SpaceProfile):
    """CAS (and its DARTS-op-set variant): stem, 8 cells, optional MSCell, head."""

    method = "cas"

    def check_space(self, space):
        for key in ("backbone_op_set", "layout", "num_classes", "height", "width"):
            if key not in space:
                raise ConfigError(f"CAS latency space lacks {key!r}")
        get_op_set(space["backbone_op_set"])
        if space.get("multiscale_op_set"):
            get_op_set(space["multiscale_op_set"])
        self.layout(space)
        return space

    @staticmethod
    def layout(space):
        return CASLayout.from_json(space["layout"])

    def op_sets(self, space):
        sets = {"normal": space["backbone_op_set"], "reduce": space["backbone_op_set"]}
        if space.get("multiscale_op_set"):
            sets["multiscale"] = space["multiscale_op_set"]
        return sets

    def plan(self, space, normal=None, reduce=None, multiscale=None):
        """The NetworkPlan of the space's supernet (cells None) or of a derived network."""
        return cas_plan(self.layout(space), space["num_classes"], space["height"],
                        space["width"], space["backbone_op_set"],
                        space.get("multiscale_op_set"), normal, reduce, multiscale)

    def _entries(self, space, normal=None, reduce=None, multiscale=None):
        return plan_entries(self.plan(space, normal, reduce, multiscale))

    def supernet_entries(self, space):
        entries = self._entries(space)
        if space.get("multiscale_op_set"):
            # The backbone stage classifies the last cell: one table serves both stages.
            entries += self._entries({**space, "multiscale_op_set": None})[-2:]
        return entries

    def network_entries(self, space, genotype):
        multiscale = genotype.cell("multiscale") if space.get("multiscale_op_set") else None
        return self._entries(space, genotype.cell("normal"), genotype.cell("reduce"),
                             multiscale)

    def _genotype(self, space, cells):
        method = "darts" if space["backbone_op_set"] == "darts" else "cas"
        return Genotype.create(method, cells,
                               macro={"layout": self.layout(space).to_json()})

    def sample_genotype(self, space, rng, op_probabilities=None):
        layout = self.layout(space)
        op_probabilities = op_probabilities or {}
        cells = {}
        for cell_type, op_set in self.op_sets(space).items():
            steps = layout.ms_steps if cell_type == "multiscale" else layout.steps
            cells[cell_type] = sample_cell(op_set, steps, rng,
                                           op_probabilities.get(cell_type))
        return self._genotype(space, cells)

    def build_network(self, space, genotype, batch=1):
        del batch
        return build_cas_network(genotype, space["num_classes"], self.layout(space),
                                 input_shape=(space["height"], space["width"], 3))

    def whole_networks(self, space):
        """CAS sec. 4.1: for each op o of each op set, the network with o on every edge.

        Backbone ops: the backbone without the multi-scale cell (the backbone stage's
        network). Multi-scale ops: the identity backbone with the multi-scale cell, so
        the difference c'_o - c'_id isolates the multi-scale cell.
        """
        layout = self.layout(space)
        signature = layout_signature(layout, space["num_classes"])
        backbone = space["backbone_op_set"]
        result = {}
        for op in get_op_set(backbone).ops:
            cell = _full_cell(backbone, layout.steps, op)
            result[network_key(backbone, op, signature, space["height"],
                               space["width"])] = self._genotype(
                space, {"normal": cell, "reduce": cell})
        ms_set = space.get("multiscale_op_set")
        if ms_set:
            skip = _full_cell(backbone, layout.steps, "skip_connect")
            for op in get_op_set(ms_set).ops:
                result[network_key(ms_set, op, signature, space["height"],
                                   space["width"])] = self._genotype(
                    space, {"normal": skip, "reduce": skip,
                            "multiscale": _full_cell(ms_set, layout.ms_steps, op)})
        return result


register_profile(CASProfile())
