"""Few-step searches on the bundled data: outputs, cost trade-off, exact resume.

Each search traces a supernet, which costs tens of seconds on 2 cores, so the tests
share runs through a module-scoped fixture instead of starting one each.
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tf_nas_seg.networks.cas_layout import CASLayout
from tf_nas_seg.networks.cas_network import build_cas_network, count_trainable_params
from tf_nas_seg.search.search_config import SearchConfig
from tf_nas_seg.search.search_runner import SearchError, SearchRunner, run_search
from tf_nas_seg.space.genotype import Genotype

# Two cells, 2 nodes each, 32x32 scenes: 2 iterations per epoch, 2 epochs.
TINY = dict(synthetic_images=16, synthetic_height=32, synthetic_width=32,
            synthetic_classes=4, layout="NR", channels=4, stem_channels=8, steps=2,
            low_level_cell=0, ms_channels=4, ms_steps=2, batch_size=4, iterations=4,
            cost="params", cost_lambda=0.0, arch_lr=0.02, checkpoint_every=1, log_every=1)


def _config(root, name, **overrides):
    return SearchConfig(**{**TINY, "run_dir": str(root / name), **overrides})


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("search")
    runner = SearchRunner(_config(root, "base"))
    summary = runner.run()
    return root, summary, runner


def _state(run_dir):
    reader = tf.train.load_checkpoint(os.path.join(run_dir, "checkpoints"))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if "elapsed" not in k and "save_counter" not in k}


def test_few_step_search_writes_a_valid_genotype_and_run_directory(base):
    root, summary, _ = base
    run = root / "base"
    assert summary["status"] == "completed" and summary["iterations"] == 4
    genotype = Genotype.load(run / "genotype.json")
    assert genotype.method == "cas" and genotype.has_cell("normal")
    for name in ("config.json", "search_summary.json", "history.json", "search_split.json",
                 "genotypes/epoch_0000.json", "genotypes/epoch_0001.json",
                 "plots/cell_normal.png", "plots/cell_reduce.png",
                 "plots/arch_weights.png", "plots/search_progress.png"):
        assert (run / name).exists(), name
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    on_disk = json.loads((run / "search_summary.json").read_text())
    assert on_disk["derived"]["params"] > 0 and on_disk["derived"]["macs"] > 0
    assert np.isfinite(on_disk["final"]["weight_loss"])
    assert [h["epoch"] for h in json.loads((run / "history.json").read_text())] == [0, 1]
    net = build_cas_network(genotype, 4)
    assert tuple(net(np.zeros((1, 32, 32, 3), "float32")).shape) == (1, 32, 32, 4)
    assert count_trainable_params(net) == summary["derived"]["params"]


def test_the_step_is_traced_once_for_the_whole_search(base):
    # Two epochs of two iterations, every one updating the architecture: one trace of
    # the bilevel step, none of the weights-only step (no warm-up configured), and the
    # per-epoch timings the history records for spotting stalls.
    root, _, runner = base
    counts = {update: fn.experimental_get_tracing_count()
              for update, fn in runner.step_functions.items()}
    assert counts == {True: 1, False: 0}
    history = json.loads((root / "base" / "history.json").read_text())
    assert all(h["first_step_seconds"] > 0 and h["median_step_seconds"] > 0
               for h in history)


@pytest.mark.slow  # two more searches (~50 s); test_kill_resume keeps a fast exact-resume check
def test_interrupted_and_resumed_search_equals_uninterrupted(base):
    root, full, _ = base
    first = run_search(_config(root, "split", stop_after_iterations=3))
    assert first["status"] == "interrupted" and first["iterations_done"] == 3
    second = run_search(_config(root, "split"))
    assert second["status"] == "completed"
    # Same seed, same machine: the run that was stopped and resumed ends with exactly
    # the variables (weights, logits, BN statistics, optimizer slots) of the other.
    a, b = _state(root / "base"), _state(root / "split")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert full["genotype"] == second["genotype"]


@pytest.mark.slow  # a third search (~15 s idle); the AutoRTNet lambda test is slow too
def test_a_large_params_lambda_gives_a_smaller_network(base):
    root, free, _ = base
    costly = run_search(_config(root, "lambda", cost_lambda=50.0))
    assert costly["derived"]["params"] < 0.7 * free["derived"]["params"], (
        costly["derived"], free["derived"])
    assert costly["cost"]["expected"] < free["cost"]["expected"]


def test_multiscale_stage_searches_on_a_fixed_backbone(base):
    root, _, _ = base
    summary = run_search(_config(root, "ms", iterations=2, stage="multiscale",
                                 backbone_genotype=str(root / "base" / "genotype.json")))
    genotype = Genotype.load(root / "ms" / "genotype.json")
    backbone = Genotype.load(root / "base" / "genotype.json")
    assert genotype.cell("normal") == backbone.cell("normal")
    assert genotype.has_cell("multiscale")
    net = build_cas_network(genotype, 4, CASLayout(**genotype.macro_dict["layout"]))
    assert count_trainable_params(net) == summary["derived"]["params"]


def test_bad_settings_are_clear_errors(base, tmp_path):
    root, _, _ = base
    with pytest.raises(SearchError, match="other settings.*channels"):
        SearchRunner(_config(root, "base", channels=6)).run()
    with pytest.raises(SearchError, match="--run_dir is required"):
        SearchRunner(SearchConfig(**TINY))
    with pytest.raises(SearchError, match="fewer than --batch_size"):
        run_search(_config(tmp_path, "big", batch_size=64))
    with pytest.raises(SearchError, match="--backbone_genotype"):
        run_search(_config(tmp_path, "ms2", stage="multiscale"))
    with pytest.raises(ValueError, match="channels=0 is below"):
        SearchConfig(**{**TINY, "channels": 0})
    with pytest.raises(ValueError, match="cost='flops' must be one of"):
        SearchConfig(**{**TINY, "cost": "flops"})


def test_a_second_search_on_a_run_directory_in_use_is_refused(tmp_path):
    from tf_nas_seg.utils.run_state import RunLock

    config = _config(tmp_path, "busy")
    with RunLock(config.run_dir, "bin/search", RuntimeError):
        with pytest.raises(SearchError, match="busy is in use by bin/search"):
            run_search(config)
    assert not (tmp_path / "busy" / "config.json").exists()  # refused before writing


def test_a_nan_loss_stops_the_search_and_keeps_the_last_good_checkpoint(tmp_path,
                                                                      monkeypatch):
    import tensorflow as tf

    from tf_nas_seg.search.bilevel_search_model import BilevelSearchModel

    original = BilevelSearchModel.weight_step

    def diverging(self, weight_batch):  # the third weight update's loss is NaN
        loss = original(self, weight_batch)
        return tf.where(self.weight_optimizer.iterations >= 3, tf.constant(float("nan")),
                        loss)

    monkeypatch.setattr(BilevelSearchModel, "weight_step", diverging)
    config = _config(tmp_path, "nan", checkpoint_every=2)
    with pytest.raises(SearchError, match=r"weight_loss became nan at iteration 3; "
                                          r".*last checkpoint \(iteration 2\).*lower --lr"):
        run_search(config)
    checkpoints = tf.train.get_checkpoint_state(str(tmp_path / "nan" / "checkpoints"))
    assert checkpoints.model_checkpoint_path.endswith("ckpt-2")
