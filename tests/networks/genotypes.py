"""Genotypes for tests that use every op of an op set at least once."""

import math

from tf_nas_seg.networks.cas_layout import CASLayout
from tf_nas_seg.ops.op_set import NONE_OPS, OP_SETS
from tf_nas_seg.space.genotype import CellGenotype, Edge, Genotype


def covering_cell(op_set, steps=None):
    """A cell whose edges cycle through every derivable op of `op_set`."""
    ops = [o for o in OP_SETS[op_set].ops if o not in NONE_OPS]
    steps = steps or math.ceil(len(ops) / 2)
    nodes, k = [], 0
    for j in range(steps):
        edges = []
        for source in (j, j + 1):  # the two newest states: a chain that uses every node
            edges.append(Edge(ops[k % len(ops)], source))
            k += 1
        nodes.append(tuple(edges))
    return CellGenotype(op_set, tuple(nodes), tuple(range(2, steps + 2)))


def covering_genotype(backbone_op_set="cas_backbone", multiscale=True, layout=None):
    """A CAS (or DARTS) genotype using every op of its op sets, on a tiny layout."""
    normal = covering_cell(backbone_op_set)
    layout = layout or CASLayout(layout="NR", channels=4, stem_channels=8,
                                 steps=len(normal.nodes), low_level_cell=0, ms_channels=4,
                                 ms_steps=5)
    cells = {"normal": normal, "reduce": covering_cell(backbone_op_set)}
    if multiscale:
        cells["multiscale"] = covering_cell("cas_multiscale", layout.ms_steps)
    method = "darts" if backbone_op_set == "darts" else "cas"
    return Genotype.create(method, cells, macro={"layout": layout.to_json()})


def covering_autortnet_genotype(depths=(2, 2, 1)):
    """An AutoRTNet genotype whose cells and aggregation edges use every op of their sets."""
    from tf_nas_seg.networks.autortnet_layout import DEFAULT_MULTISCALE, AutoRTNetLayout
    from tf_nas_seg.space.aggregation_cell import AGGREGATION_EDGES, AGGREGATION_OUTPUTS

    ops = [o for o in OP_SETS["autortnet_cell"].ops if o not in NONE_OPS]
    cells, k = {}, 0
    for h in range(1, 4):
        for cell_type in ("reduce", "normal"):
            nodes = []
            for j in range(2):
                nodes.append((Edge(ops[k % len(ops)], j), Edge(ops[(k + 1) % len(ops)],
                                                               j + 1)))
                k += 2
            cells[f"{cell_type}_{h}"] = CellGenotype("autortnet_cell", tuple(nodes), (2, 3))
    cells["multiscale"] = DEFAULT_MULTISCALE
    agg_ops = OP_SETS["aggregation"].ops
    layout = AutoRTNetLayout(hyper_cells=(2, 3, 2), channels=4, channel_growth=2,
                             agg_channels=8, ms_channels=8)
    macro = {"layout": layout.to_json(), "depths": list(depths),
             "aggregation": {"op_set": "aggregation",
                             "edges": [list(e) for e in AGGREGATION_EDGES],
                             "outputs": list(AGGREGATION_OUTPUTS),
                             "ops": [agg_ops[i % len(agg_ops)]
                                     for i in range(len(AGGREGATION_EDGES))]}}
    return Genotype.create("autortnet", cells, macro=macro)
