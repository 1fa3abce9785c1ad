"""What a table of a CAS space must hold: every candidate op and every fixed layer."""

import dataclasses

import keras
import numpy as np
import pytest

from tf_nas_seg.ops.op_set import NONE_OPS, get_op_set
from tf_nas_seg.latency.layer_entry import dedupe
from tf_nas_seg.latency.profiles import get_profile

from tests.latency.helpers import TINY_LAYOUT, tiny_space

FIXED_LAYERS = ("standardize", "conv_3x3", "factorized_reduce", "add2", "concat2",
                "classifier_1x1", "resize_to_32x48", "resize_to_8x12")


@pytest.mark.parametrize("backbone_op_set", ["cas_backbone", "darts"])
def test_keys_cover_every_op_of_every_search_space(backbone_op_set):
    # a normal cell after the reduction cell reads its inputs through a factorized reduce
    layout = dataclasses.replace(TINY_LAYOUT, layout="NRN")
    space = tiny_space(backbone_op_set, layout=layout)
    keys = {e.key for e in get_profile("cas").supernet_entries(space)}
    for op_set in (backbone_op_set, "cas_multiscale"):
        for op in get_op_set(op_set).ops:
            found = [k for k in keys if k.startswith(f"{op_set}/{op}|")]
            if op in NONE_OPS:
                assert not found, op  # "no edge" costs nothing and is never measured
            else:
                assert found, f"{op_set}/{op} has no entry"
    names = {k.split("|")[0].split("/", 1)[1] for k in keys if k.startswith("fixed/")}
    preprocessing = "conv_1x1" if backbone_op_set == "cas_backbone" else "relu_conv_bn_1x1"
    for name in FIXED_LAYERS + (preprocessing,):
        assert name in names, name
    # the reduction cell's input edges have stride 2, its node edges stride 1
    assert any(k.startswith(f"{backbone_op_set}/max_pool_3x3|8|8|8x12|s2") for k in keys)
    assert any(k.startswith(f"{backbone_op_set}/max_pool_3x3|8|8|4x6|s1") for k in keys)


def test_every_derived_network_key_is_a_supernet_key():
    """A prediction can never miss a key the build measured (one walker for both)."""
    profile = get_profile("cas")
    for multiscale in (True, False):
        space = tiny_space(multiscale=multiscale)
        keys = {e.key for e in profile.supernet_entries(space)}
        rng = np.random.default_rng(0)
        for _ in range(20):
            genotype = profile.sample_genotype(space, rng)
            missing = {e.key for e in profile.network_entries(space, genotype)} - keys
            assert not missing


def test_backbone_stage_head_is_in_a_multiscale_table():
    profile = get_profile("cas")
    full = {e.key for e in profile.supernet_entries(tiny_space(multiscale=True))}
    backbone = {e.key for e in profile.supernet_entries(tiny_space(multiscale=False))}
    assert backbone <= full


def test_every_entry_builds_at_its_shapes():
    """Each factory makes a callable that accepts its recorded input shapes."""
    for entry in dedupe(get_profile("cas").supernet_entries(tiny_space())):
        fn = entry.factory()
        out = fn(*[keras.KerasTensor((1, *s)) for s in entry.input_shapes])
        assert out.shape[0] == 1, entry.key
        c_out = int(entry.key.split("|")[2])
        assert out.shape[-1] == c_out, entry.key


def test_derived_network_entries_follow_the_network():
    """Convolution MACs of the entries equal the derived network's exact MACs."""
    from tf_nas_seg.networks.cas_network import cas_network_macs

    profile = get_profile("cas")
    space = tiny_space()
    genotype = profile.sample_genotype(space, np.random.default_rng(3))
    model = profile.build_network(space, genotype)
    total = 0
    for entry in profile.network_entries(space, genotype):
        fn = entry.factory()
        fn(*[keras.KerasTensor((1, *s)) for s in entry.input_shapes])
        layer = getattr(fn, "__self__", None) or _closure_layer(fn)
        if layer is not None and hasattr(layer, "count_macs"):
            total += layer.count_macs(entry.input_shapes[0])
        elif layer is not None and isinstance(layer, keras.layers.Conv2D):
            h, w, c = entry.input_shapes[0]
            total += h * w * c * layer.filters
    layout = profile.layout(space)
    assert total == cas_network_macs(model, layout, space["height"], space["width"])


def _closure_layer(fn):
    for cell in fn.__closure__ or ():
        if isinstance(cell.cell_contents, keras.layers.Layer):
            return cell.cell_contents
    return None
