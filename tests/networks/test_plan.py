"""The network plan, the Keras graph and the latency entries agree layer by layer."""

import keras
import pytest

from tf_nas_seg.networks.autortnet_layout import AutoRTNetLayout
from tf_nas_seg.networks.autortnet_network import (autortnet_network_macs,
                                                   build_autortnet_network)
from tf_nas_seg.networks.cas_layout import CASLayout
from tf_nas_seg.networks.cas_network import build_cas_network, cas_network_macs
from tf_nas_seg.networks.plan import (StemPlan, autortnet_genotype_plan, autortnet_plan,
                                      cas_genotype_plan, cas_plan, plan_macs)
from tf_nas_seg.networks.model_macs import count_model_macs
from tf_nas_seg.latency.plan_entries import plan_sections, stem_entries
from tf_nas_seg.search.autortnet_supernet import AutoRTNetSupernet
from tf_nas_seg.search.cas_supernet import CASSupernet

from tests.networks.genotypes import covering_autortnet_genotype, covering_genotype

H, W = 45, 70  # odd sizes: every stride rounds up


def _input_shapes(layer):
    """(h, w, c) of each tensor a functional model feeds `layer` (batch dropped)."""
    node = layer._inbound_nodes[0]
    return [tuple(t.shape[1:]) for t in node.input_tensors]


def _output_shape(layer):
    return tuple(layer._inbound_nodes[0].output_tensors[0].shape[1:])


def _check_graph(model, plan):
    names = [layer.name for layer in model.layers]
    order = [cell.name for cell in plan.all_cells()]
    assert [n for n in names if n in order] == order
    for cell in plan.all_cells():
        layer = model.get_layer(cell.name)
        assert _input_shapes(layer) == [cell.s0, cell.s1], cell.name
        assert _output_shape(layer) == cell.output_shape, cell.name
        assert layer.genotype == cell.genotype
        assert (layer.reduction, layer.channels) == (cell.reduction, cell.channels)
        if not cell.multiscale:
            assert layer.reduction_prev == cell.reduction_prev, cell.name
    if plan.aggregation is not None:
        layer = model.get_layer("aggregation")
        assert _input_shapes(layer) == list(plan.aggregation.input_shapes)
        assert _output_shape(layer) == plan.aggregation.output_shape
    head = model.get_layer("head")
    assert _input_shapes(head)[0] == plan.head.features
    assert tuple(model.output.shape[1:3]) == (H, W)


def _check_entries(plan):
    """Each cell's entries read the plan's shapes: preprocessing on s0 and s1, ops at
    the plan's edge shapes, sums and the concat at the node size."""
    sections = plan_sections(plan)
    cells = [c for c, _ in sections["cells"]]
    assert cells == list(plan.cells)
    for cell, entries in sections["cells"] + ([(plan.ms_cell, sections["multiscale"])]
                                              if plan.ms_cell else []):
        if not cell.multiscale:
            assert entries[0].input_shapes == (cell.s0,), cell.name
            assert entries[1].input_shapes == (cell.s1,), cell.name
        op_shapes = {cell.edge_shape(source) for _, source, _ in cell.edges}
        ops = [e for e in entries if "/" in e.key and not e.key.startswith("fixed/")]
        assert {e.input_shapes[0] for e in ops} == op_shapes, cell.name
        concat = entries[-1]
        assert concat.key.startswith(f"fixed/concat{len(cell.concat)}|")
        assert concat.input_shapes[0] == cell.node_shape
    head = sections["head"][0]
    assert head.input_shapes == (plan.head.features,)
    stem = sections["stem"][1:]
    assert [e.input_shapes[0] for e in stem] == plan.stem.conv_input_shapes


def test_cas_plan_is_the_network_the_builder_makes():
    genotype = covering_genotype()
    plan = cas_genotype_plan(genotype, 5, input_shape=(H, W, 3))
    model = build_cas_network(genotype, 5, input_shape=(H, W, 3))
    _check_graph(model, plan)
    _check_entries(plan)
    layout = CASLayout(**genotype.macro_dict["layout"])
    macs = count_model_macs(model, H, W)
    assert plan_macs(plan, {layer.name: layer for layer in model.layers}) == macs
    assert cas_network_macs(model, layout, H, W) == macs


@pytest.mark.parametrize("depths", [(2, 2, 1), (1, 3, 2)])
def test_autortnet_plan_is_the_network_the_builder_makes(depths):
    genotype = covering_autortnet_genotype(depths)
    plan = autortnet_genotype_plan(genotype, 5, input_shape=(H, W, 3))
    model = build_autortnet_network(genotype, 5, input_shape=(H, W, 3))
    _check_graph(model, plan)
    _check_entries(plan)
    # The two-input rule: a reduction cell after a depth-1 hyper-cell reads x_(-1),
    # twice its other input's size.
    for cell in plan.cells:
        assert cell.reduction_prev == (cell.s0[0] != cell.s1[0])
    assert autortnet_network_macs(genotype, 5, H, W) == count_model_macs(model, H, W)


def test_supernets_run_their_plans():
    genotype = covering_genotype()
    layout = CASLayout(**genotype.macro_dict["layout"])
    backbone = CASSupernet(5, layout)
    assert [c.name for c in backbone.cells] == [c.name for c in backbone.plan.cells]
    assert all(c.searched for c in backbone.plan.cells) and backbone.plan.ms_cell is None
    ms = CASSupernet(5, layout, stage="multiscale", backbone_genotype=genotype)
    assert ms.plan.ms_cell.searched and not any(c.searched for c in ms.plan.cells)
    out = ms(keras.ops.zeros((1, H, W, 3)), training=False)
    assert tuple(out.shape) == (1, H, W, 5)


def test_autortnet_supernet_hyper_cells_follow_the_deepest_plan():
    layout = AutoRTNetLayout(hyper_cells=(2, 3, 1), channels=4, channel_growth=2,
                             agg_channels=8, ms_channels=8)
    supernet = AutoRTNetSupernet(5, layout)
    groups = supernet.network_plan(H, W).hyper_cells()
    assert [len(g) for g in groups] == [2, 3, 1]
    for hyper_cell, cells in zip(supernet.hyper_cells, groups):
        assert hyper_cell.num_cells == len(cells)
        assert hyper_cell.channels == cells[0].channels
        assert hyper_cell.reduction_prev == cells[0].reduction_prev
    assert supernet.aggregation.channels == supernet.plan.aggregation.channels


def test_stem_entries_come_from_the_stem_layers():
    """A changed stem changes the table keys with it (no second copy of the strides)."""
    plan = cas_plan(_tiny_layout(), 5, H, W)
    keys = [e.key for e in stem_entries(plan.stem)[1:]]
    assert [k.split("|")[4] for k in keys] == ["s2", "s1", "s2"]
    other = StemPlan(plan.stem.filters, (2, 2, 2), plan.stem.input_shape)
    keys = [e.key for e in stem_entries(other)[1:]]
    assert [k.split("|")[4] for k in keys] == ["s2", "s2", "s2"]
    assert [k.split("|")[3] for k in keys] == ["45x70", "23x35", "12x18"]
    # Every entry builds as its key says: the factory is the stem layer's own conv.
    entry = stem_entries(other)[2]
    fn = entry.factory()
    y = fn(keras.ops.zeros((1,) + entry.input_shapes[0]))
    assert tuple(y.shape[1:]) == (12, 18, plan.stem.filters)


def _tiny_layout():
    return CASLayout(layout="NRN", channels=4, stem_channels=8, steps=2, low_level_cell=0,
                     ms_channels=4, ms_steps=2)


def test_dynamic_plan_has_unknown_sizes_and_same_channels():
    static = autortnet_plan(_autortnet_layout(), 5, H, W)
    dynamic = autortnet_plan(_autortnet_layout(), 5)
    for a, b in zip(static.all_cells(), dynamic.all_cells()):
        assert b.s0[:2] == (None, None) and b.s1[:2] == (None, None)
        assert (a.s0[2], a.s1[2], a.output_shape[2]) == (b.s0[2], b.s1[2],
                                                         b.output_shape[2])


def _autortnet_layout():
    return AutoRTNetLayout(hyper_cells=(2, 2, 2), channels=4, channel_growth=2,
                           agg_channels=8, ms_channels=8)
