"""Latency profile of AutoRTNet networks: the supernet's layers, derived networks, sampling.

The entries of an AutoRTNet network come from its `NetworkPlan` (`autortnet_plan`, the
plan `build_autortnet_network` and the supernet are built from) through the one walker
of `tf_nas_seg.latency.plan_entries`: the stem convs, per kept cell its preprocessing
(factorized reduce when input 0 has twice the size: the two-input rule), ops, node sums
and concatenation, the aggregation cell, the fixed multi-scale module and the head.

The supernet's entries are those of the deepest network (every cell position) plus the
shallowest (every hyper-cell of depth 1: the factorized-reduce preprocessing the
two-input rule gives the next reduction cell); every derived network's keys are among
them, because a cell's shapes depend only on its position and on whether the previous
hyper-cell ended at its reduction cell.
"""

from tf_nas_seg.networks.autortnet_layout import DEFAULT_MULTISCALE, AutoRTNetLayout
from tf_nas_seg.networks.plan import (AUTORTNET_AGGREGATION_OP_SET, AUTORTNET_CELL_OP_SET,
                                      autortnet_cell_type, autortnet_genotype_plan,
                                      autortnet_plan)
from tf_nas_seg.ops.op_set import get_op_set
from tf_nas_seg.latency.cas_profile import derivable_ops, sample_cell
from tf_nas_seg.latency.plan_entries import AGGREGATION_TYPE, plan_entries, plan_sections
from tf_nas_seg.latency.profiles import SpaceProfile, register_profile
from tf_nas_seg.space.aggregation_cell import AGGREGATION_EDGES, AGGREGATION_OUTPUTS
from tf_nas_seg.space.genotype import Genotype
from tf_nas_seg.errors import ConfigError

# Op sets of the AutoRTNet search space (the supernet's, see autortnet_supernet).
CELL_OP_SET = AUTORTNET_CELL_OP_SET
AGGREGATION_OP_SET = AUTORTNET_AGGREGATION_OP_SET
cell_type = autortnet_cell_type


def autortnet_space(layout, num_classes, height, width, cell_op_set=CELL_OP_SET,
                    aggregation_op_set=AGGREGATION_OP_SET):
    """The JSON-able search-space description of an AutoRTNet table (see SpaceProfile)."""
    return {"method": "autortnet", "cell_op_set": cell_op_set,
            "aggregation_op_set": aggregation_op_set, "layout": layout.to_json(),
            "num_classes": int(num_classes), "height": int(height), "width": int(width)}


def space_plan(space, depths=None, cells=None, aggregation=None,
               multiscale=DEFAULT_MULTISCALE):
    """The NetworkPlan of a network of the space at its target size (see
    `autortnet_plan`; depths None: every cell, cells None: search cells)."""
    return autortnet_plan(AutoRTNetLayout.from_json(space["layout"]), space["num_classes"],
                          space["height"], space["width"], depths, cells, aggregation,
                          multiscale, cell_op_set=space["cell_op_set"],
                          aggregation_op_set=space["aggregation_op_set"])


def autortnet_layer_sections(space, depths, cells=None, aggregation=None,
                             multiscale=DEFAULT_MULTISCALE):
    """Entries of an AutoRTNet network by part (`plan_entries.plan_sections`)."""
    return plan_sections(space_plan(space, depths, cells, aggregation, multiscale))


def autortnet_layer_entries(space, depths, cells=None, aggregation=None,
                            multiscale=DEFAULT_MULTISCALE):
    """Entries of an AutoRTNet network (search cells or a derived network) in order.

    Args:
        space: The AutoRTNet space dict (`autortnet_space`).
        depths: Kept cells per hyper-cell.
        cells: {cell type: CellGenotype} of a derived network; None: search cells (every
            candidate op of every edge, EdgeRef cell types "reduce_h" / "normal_h").
        aggregation: The genotype's macro "aggregation" dict; None: the search cell
            (every candidate op of every edge, EdgeRef cell type "aggregation").
        multiscale: CellGenotype of the fixed multi-scale module.

    Returns:
        A list of LayerEntry (keys may repeat).
    """
    return plan_entries(space_plan(space, depths, cells, aggregation, multiscale))


class AutoRTNetProfile(SpaceProfile):
    """AutoRTNet: stem, three hyper-cells of searched depth, aggregation cell, MSCell, head."""

    method = "autortnet"

    def check_space(self, space):
        for key in ("cell_op_set", "aggregation_op_set", "layout", "num_classes",
                    "height", "width"):
            if key not in space:
                raise ConfigError(f"AutoRTNet latency space lacks {key!r}")
        get_op_set(space["cell_op_set"])
        get_op_set(space["aggregation_op_set"])
        self.layout(space)
        return space

    @staticmethod
    def layout(space):
        return AutoRTNetLayout.from_json(space["layout"])

    def op_sets(self, space):
        sets = {}
        for h in range(len(self.layout(space).hyper_cells)):
            sets[cell_type(h, 0)] = space["cell_op_set"]
            sets[cell_type(h, 1)] = space["cell_op_set"]
        sets[AGGREGATION_TYPE] = space["aggregation_op_set"]
        return sets

    def supernet_entries(self, space):
        layout = self.layout(space)
        deepest = autortnet_layer_entries(space, layout.hyper_cells)
        shallowest = autortnet_layer_entries(space, (1,) * len(layout.hyper_cells))
        return deepest + shallowest

    def network_entries(self, space, genotype):
        plan = autortnet_genotype_plan(genotype, space["num_classes"],
                                       (space["height"], space["width"], 3))
        layout = AutoRTNetLayout.from_json(genotype.macro_dict["layout"])
        if layout != self.layout(space):
            raise ConfigError(f"the genotype's layout {layout.to_json()} is not the table's "
                             f"search space {space['layout']}")
        return plan_entries(plan)

    def sample_genotype(self, space, rng, op_probabilities=None):
        """A random derived network: depths, cells and aggregation ops.

        Depths are drawn per architecture around a random depth fraction u ~ U(0, 1)
        (depth_h = 1 + Binomial(cells_h - 1, u)), so samples range from all-shallow to
        all-deep networks rather than clustering at the middle.
        """
        layout = self.layout(space)
        op_probabilities = op_probabilities or {}
        cells = {}
        for name, op_set in self.op_sets(space).items():
            if name == AGGREGATION_TYPE:
                ops, p = derivable_ops(op_set, op_probabilities.get(name))
                chosen = [ops[rng.choice(len(ops), p=p)] for _ in AGGREGATION_EDGES]
                continue
            cells[name] = sample_cell(op_set, layout.steps, rng, op_probabilities.get(name))
        cells["multiscale"] = DEFAULT_MULTISCALE
        fraction = rng.uniform()
        depths = [1 + int(rng.binomial(n - 1, fraction)) for n in layout.hyper_cells]
        macro = {"layout": layout.to_json(), "depths": depths,
                 "aggregation": {"op_set": space["aggregation_op_set"],
                                 "edges": [list(e) for e in AGGREGATION_EDGES],
                                 "outputs": list(AGGREGATION_OUTPUTS), "ops": chosen}}
        return Genotype.create("autortnet", cells, macro=macro)

    def build_network(self, space, genotype, batch=1):
        from tf_nas_seg.networks.autortnet_network import build_autortnet_network

        del batch
        return build_autortnet_network(genotype, space["num_classes"],
                                       input_shape=(space["height"], space["width"], 3))


register_profile(AutoRTNetProfile())
