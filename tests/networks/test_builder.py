"""Derived networks from every op set, the peer, MAC counting and genotype checks."""

import keras
import numpy as np
import pytest

from tests.layer_test_helper import run_layer_test
from tests.networks.genotypes import covering_autortnet_genotype, covering_genotype
from tf_nas_seg.networks import (CASLayout, build_fast_scnn, build_network, cas_network_macs,
                                 count_trainable_params)
from tf_nas_seg.networks.model_macs import count_model_macs
from tf_nas_seg.ops.inverted_residual import InvertedResidual
from tf_nas_seg.ops.pyramid_pooling import PyramidPooling, adaptive_average_pool
from tf_nas_seg.space.genotype import Genotype, GenotypeError
from tf_nas_seg.train.ohem import SegmentationLoss


def _one_step(model, rng, size=(32, 32), classes=4):
    images = rng.uniform(0, 255, (2,) + size + (3,)).astype("float32")
    labels = rng.integers(0, classes, (2,) + size).astype("int32")
    labels[:, :4] = 255
    model.compile(optimizer=keras.optimizers.SGD(0.05),
                  loss=SegmentationLoss("ohem", threshold=0.9, min_kept=0.1))
    keras.utils.set_random_seed(0)
    # BN offsets whose output reaches the loss only through another conv + batch norm
    # get no gradient (a per-channel shift is normalised away), so only convolution
    # kernels must all move.
    kernels = [w for w in model.trainable_weights if "/bn" not in w.path
               and not w.path.endswith(("gamma", "beta"))]
    before = [keras.ops.convert_to_numpy(w).copy() for w in kernels]
    loss = float(model.train_on_batch(images, labels))
    after = [keras.ops.convert_to_numpy(w) for w in kernels]
    assert np.isfinite(loss)
    changed = sum(not np.allclose(b, a) for b, a in zip(before, after))
    return changed, len(before)


@pytest.mark.parametrize("backbone_op_set", ["cas_backbone", "darts", "autortnet"])
def test_derived_network_from_every_op_set_trains_one_step(backbone_op_set, tmp_path):
    # Normal and reduction cells cycle through every op of the backbone set, the
    # multi-scale cell through every op of O_ms; the AutoRTNet genotype covers the
    # intra-cell set and the aggregation set.
    genotype = (covering_autortnet_genotype() if backbone_op_set == "autortnet"
                else covering_genotype(backbone_op_set))
    keras.utils.set_random_seed(0)
    model = build_network(genotype, 4)
    # AutoRTNet reaches stride 32: at 32x32 its last maps would be 1x1, where batch norm
    # over a batch of 2 outputs +-1 and passes no gradient.
    size = (64, 64) if backbone_op_set == "autortnet" else (32, 32)
    changed, total = _one_step(model, np.random.default_rng(0), size=size)
    # A unit whose ReLU is dead on this batch legitimately gets no gradient.
    assert total > 20 and changed >= 0.9 * total
    # The trained network saves and loads back as the same function.
    model.save(tmp_path / "net.keras")
    loaded = keras.saving.load_model(tmp_path / "net.keras", compile=False)
    x = np.random.default_rng(2).uniform(0, 255, (1, 40, 24, 3)).astype("float32")
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-5, atol=1e-5)


def test_width_multiplier_scales_channels_and_keeps_the_graph():
    genotype = covering_genotype()
    narrow = build_network(genotype, 4)
    wide = build_network(genotype, 4, width_multiplier=2.0)
    assert count_trainable_params(wide) > 3 * count_trainable_params(narrow)
    assert len(wide.layers) == len(narrow.layers)


def test_graph_mac_count_equals_the_analytic_count_of_derived_networks():
    genotype = covering_genotype()
    model = build_network(genotype, 4, input_shape=(48, 64, 3))
    layout = CASLayout(**genotype.macro_dict["layout"])
    assert count_model_macs(model, 48, 64) == cas_network_macs(model, layout, 48, 64)


def test_fast_scnn_peer_has_the_published_size_and_runs_at_any_size():
    model = build_fast_scnn(19)
    # Fast-SCNN reports 1.11 M parameters for 19 classes; this style differs in its
    # separable units (one BN instead of two) and counts within a few percent.
    assert 1.05e6 < count_trainable_params(model) < 1.2e6
    for size in ((64, 96), (75, 101)):
        out = model(np.zeros((1,) + size + (3,), np.float32))
        assert out.shape == (1,) + size + (19,)
    changed, total = _one_step(build_network(None, 4, peer="fast_scnn",
                                             width_multiplier=0.25),
                               np.random.default_rng(1), size=(64, 64))
    assert total > 20 and changed >= 0.9 * total


def test_adaptive_average_pool_matches_pytorch_binning():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 7, 10, 3)).astype("float32")
    for bins in (1, 2, 3, 6):
        out = np.asarray(adaptive_average_pool(x, bins))
        for i in range(bins):
            for j in range(bins):
                r0, r1 = (i * 7) // bins, -((-(i + 1) * 7) // bins)
                c0, c1 = (j * 10) // bins, -((-(j + 1) * 10) // bins)
                np.testing.assert_allclose(out[:, i, j], x[:, r0:r1, c0:c1].mean(axis=(1, 2)),
                                           rtol=1e-5, atol=1e-6)


def test_peer_layers_serialize_and_train(tmp_path):
    # expand/bn0/gamma scales each channel before a depthwise conv and a batch norm,
    # which normalises the scale away while beta is 0 (as initialised).
    run_layer_test(lambda: InvertedResidual(8, expansion=2, strides=2), (16, 16, 4),
                   (8, 8, 8), tmp_path, invariant_weights=("expand/bn0/gamma",))
    # Batch 4: the 1x1 branch normalises 1 value per image over the batch, and over
    # 2 values batch norm outputs +-1 whatever its input (no gradient).
    run_layer_test(lambda: PyramidPooling(6), (12, 12, 8), (12, 12, 6), tmp_path, batch=4)


def test_genotypes_that_do_not_fit_are_refused_with_the_fix():
    genotype = covering_genotype()
    with pytest.raises(GenotypeError, match="--method=cas"):
        build_network(genotype, 4, method="autortnet")
    data = genotype.to_json()
    data["cells"]["normal"]["op_set"] = "aggregation"
    data["cells"]["normal"]["nodes"] = [[["conv_1x1_x2", 0], ["conv_3x3_x2", 1]]]
    data["cells"]["normal"]["concat"] = [2]
    with pytest.raises(GenotypeError, match="not a search space of cas normal cells"):
        build_network(Genotype.from_json(data), 4)
    data = genotype.to_json()
    del data["cells"]["reduce"]
    with pytest.raises(GenotypeError, match="needs a 'reduce' cell"):
        build_network(Genotype.from_json(data), 4)
    with pytest.raises(ValueError, match="exactly one"):
        build_network(genotype, 4, peer="fast_scnn")
    with pytest.raises(ValueError, match="unknown peer"):
        build_network(None, 4, peer="resnet")
