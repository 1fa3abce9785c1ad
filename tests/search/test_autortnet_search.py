"""A few-step AutoRTNet search on the bundled data, through bin/search's runner.

Tracing the AutoRTNet search step (nested conditionals for the pruned exits, forward
and backward) costs minutes on 2 cores, so these runs are marked slow.
"""

import json

import numpy as np
import pytest

from tf_nas_seg.networks.autortnet_network import build_autortnet_network
from tf_nas_seg.search.search_config import SearchConfig
from tf_nas_seg.search.search_runner import run_search
from tf_nas_seg.space.genotype import Genotype

TINY = dict(method="autortnet", synthetic_images=16, synthetic_height=32,
            synthetic_width=32, synthetic_classes=4, hyper_cells="2,2,2", channels=4,
            channel_growth=2, steps=2, agg_channels=4, ms_channels=4, batch_size=4,
            iterations=4, relaxation="gumbel", lr_schedule="cosine", lr=0.025,
            lr_min=0.001, arch_lr=0.05, beta_warmup_epochs=1, cost="macs",
            checkpoint_every=1, log_every=1)


@pytest.mark.slow
def test_few_step_autortnet_search_gives_a_valid_genotype_that_builds(tmp_path):
    summary = run_search(SearchConfig(**TINY, run_dir=str(tmp_path / "run")))
    run = tmp_path / "run"
    assert summary["status"] == "completed"
    genotype = Genotype.load(run / "genotype.json")
    assert genotype.method == "autortnet"
    assert genotype.macro_dict["depths"] == summary["depths"]
    assert all(1 <= d <= 2 for d in summary["depths"])
    for name in ("plots/depths.png", "plots/cell_reduce_1.png", "plots/arch_weights.png",
                 "genotypes/epoch_0001.json"):
        assert (run / name).exists(), name
    history = json.loads((run / "history.json").read_text())
    assert {"depth_1", "expected_depth_3", "sampled_depth_2", "temperature"} <= set(
        history[0])
    assert history[0]["temperature"] == pytest.approx(3.0)
    assert history[1]["temperature"] == pytest.approx(0.03)
    net = build_autortnet_network(genotype, 4)
    out = net(np.zeros((2, 32, 32, 3), "float32"))
    assert tuple(out.shape) == (2, 32, 32, 4) and np.all(np.isfinite(out))


@pytest.mark.slow
def test_a_large_macs_lambda_searches_a_shallower_cheaper_network(tmp_path):
    common = {**TINY, "beta_warmup_epochs": 0, "iterations": 8, "synthetic_images": 16}
    free = run_search(SearchConfig(**common, cost_lambda=0.0,
                                   run_dir=str(tmp_path / "free")))
    cheap = run_search(SearchConfig(**common, cost_lambda=1e5,
                                    run_dir=str(tmp_path / "cheap")))
    assert sum(cheap["depths"]) <= sum(free["depths"])
    assert (cheap["derived_predicted_cost"]["value"]
            < free["derived_predicted_cost"]["value"])
