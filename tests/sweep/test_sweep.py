"""bin/sweep and bin/plot on the bundled synthetic scenes with tiny budgets.

One sweep runs every stage as a user would (a latency table built and read, a CAS
search, two random networks inside the latency band, a peer, training, the shared
benchmark, the table and the Pareto plot); rerunning it recomputes nothing.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}

SEARCH = """--dataset=synthetic
--synthetic_images=8
--synthetic_height=32
--synthetic_width=48
--synthetic_classes=3
--layout=NR
--channels=4
--stem_channels=8
--steps=1
--batch_size=4
--iterations=2
--low_level_cell=0
--target_height=32
--target_width=48
"""
TRAIN = """--dataset=synthetic
--synthetic_images=8
--synthetic_val_images=4
--synthetic_height=32
--synthetic_width=48
--synthetic_classes=3
--scale_min=1.0
--scale_max=1.0
--batch_size=4
--iterations=2
--overlays=0
"""
FAST_TABLE = "--min_repeats=2 --max_repeats=2 --min_seconds=0 --warmup=0 --layer_repeats=2"


def _run(tool, *args, timeout=900):
    return subprocess.run([sys.executable, str(ROOT / "bin" / tool), *args],
                          capture_output=True, text=True, timeout=timeout, env=ENV)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    (tmp / "search.cfg").write_text(SEARCH)
    (tmp / "train.cfg").write_text(TRAIN)
    args = ["--methods=cas", "--lambdas=0.01", f"--cas_flagfile={tmp / 'search.cfg'}",
            f"--train_flagfile={tmp / 'train.cfg'}", "--train_args=--width_multiplier=0.25",
            # a search-only flag, which the table build must not be given
            "--search_args=--arch_lr=0.0003",
            f"--table_args={FAST_TABLE}", "--nocalibrate_tables", "--random=2",
            "--random_band=3", "--peers=fast_scnn:0.25", "--bench_runs=3", "--bench_warmup=1",
            f"--run_dir={tmp / 'sweep'}"]
    result = _run("sweep", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp / "sweep", args, result


def test_sweep_writes_the_table_the_plot_and_every_point(sweep):
    sweep_dir, _, result = sweep
    results = json.loads((sweep_dir / "results.json").read_text())
    rows = {r["name"]: r for r in results["points"]}
    assert sorted(rows) == ["cas_lambda0.01", "peer_fast_scnn_w0.25", "random_cas_00",
                            "random_cas_01"]
    for row in rows.values():
        assert row["status"] == "timed", row
        assert 0.0 <= row["val_miou"] <= 1.0 and row["params"] > 0
        assert row["latency_median_ms"] > 0 and row["latency_p90_ms"] >= 0
        assert row["timed_at"] == [32, 48]
    for name in ("cas_lambda0.01", "random_cas_00", "random_cas_01"):
        assert rows[name]["predicted_ms"] > 0  # priced by the table the sweep built
    assert "predicted_ms" not in rows["peer_fast_scnn_w0.25"]
    assert rows["peer_fast_scnn_w0.25"]["width"] == 0.25
    # the random networks lie inside the band around the searched one, by the table
    samples = json.loads((sweep_dir / "points" / "random_cas_samples.json").read_text())
    low, high, band = samples["band"]
    for name in ("random_cas_00", "random_cas_01"):
        assert low * (1 - band) <= rows[name]["predicted_ms"] <= high * (1 + band)
    assert samples["searched_predicted_ms"] == [pytest.approx(
        rows["cas_lambda0.01"]["predicted_ms"])]
    baseline = results["random_baseline"]["cas"]
    assert baseline["n"] == 2 and baseline["threshold"] == pytest.approx(
        baseline["mean"] + 2 * baseline["sd"])
    verdict = results["verdicts"]["cas_lambda0.01"]
    assert set(verdict["peers"]) == {"fast_scnn x0.25"} and "beats_random" in verdict
    assert results["pareto_front"]
    assert (sweep_dir / "plots" / "pareto.png").stat().st_size > 10000
    table = (sweep_dir / "results.md").read_text()
    assert "| cas λ=0.01 | searched | cas | 0.01 |" in table
    assert "random baseline" in table and "Verdicts" in table
    # every child wrote its log; the search ran with the latency cost and the table
    search_config = json.loads((sweep_dir / "points" / "cas_lambda0.01" / "search" /
                                "config.json").read_text())
    assert search_config["cost"] == "latency" and search_config["cost_lambda"] == 0.01
    assert search_config["arch_lr"] == 0.0003  # --search_args reached the search
    assert search_config["latency_table"] == str(sweep_dir / "tables" / "cas.json")


def test_rerunning_a_finished_sweep_recomputes_nothing(sweep):
    sweep_dir, args, _ = sweep
    logs = sorted(sweep_dir.rglob("*.log"))
    before = {p: p.stat().st_mtime_ns for p in logs}
    summaries = sorted(sweep_dir.rglob("train_summary.json"))
    stamps = {p: p.stat().st_mtime_ns for p in summaries}
    result = _run("sweep", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[sweep] train" not in result.stderr and "[sweep] search" not in result.stderr
    assert {p: p.stat().st_mtime_ns for p in logs} == before
    assert {p: p.stat().st_mtime_ns for p in summaries} == stamps


def test_changed_settings_are_refused_and_a_second_sweep_is_locked_out(sweep, tmp_path):
    sweep_dir, args, _ = sweep
    changed = [a if not a.startswith("--train_args") else "--train_args=--lr=0.5"
               for a in args]
    result = _run("sweep", *changed)
    assert result.returncode == 2 and "other settings" in result.stderr
    assert "train_args" in result.stderr
    import fcntl

    with open(sweep_dir / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = _run("sweep", *args)
    assert result.returncode == 2 and "is in use by" in result.stderr


def test_plot_redraws_every_figure_from_files(sweep):
    sweep_dir, _, _ = sweep
    pareto = sweep_dir / "plots" / "pareto.png"
    pareto.unlink()
    search_dir = sweep_dir / "points" / "cas_lambda0.01" / "search"
    for png in (search_dir / "plots").glob("*.png"):
        png.unlink()
    result = _run("plot", str(sweep_dir))
    assert result.returncode == 0, result.stderr[-2000:]
    written = json.loads(result.stdout)["figures"]
    assert str(pareto) in written and pareto.exists()
    for name in ("cell_normal.png", "cell_reduce.png", "arch_weights.png",
                 "search_progress.png"):
        assert (search_dir / "plots" / name).exists(), name
    assert (sweep_dir / "points" / "peer_fast_scnn_w0.25" / "train" / "plots" /
            "training.png").exists()


def test_plot_and_sweep_refuse_bad_input_clearly(tmp_path):
    result = _run("plot", str(tmp_path))
    assert result.returncode == 2 and "not a sweep, search or training run" in result.stderr
    result = _run("sweep", f"--run_dir={tmp_path / 's'}", "--methods=nas")
    assert result.returncode != 0 and "unknown method 'nas'" in result.stderr
    result = _run("sweep", f"--run_dir={tmp_path / 's'}", "--methods=cas",
                  "--cost=macs", "--random=2", "--random_band=0.25")
    assert result.returncode != 0 and "needs --cost=latency" in result.stderr
    result = _run("sweep", f"--run_dir={tmp_path / 's'}",
                  f"--cas_flagfile={tmp_path / 'missing.cfg'}", "--methods=cas")
    assert result.returncode == 2 and "missing.cfg: no such file" in result.stderr


def test_random_networks_drawn_for_other_searches_are_refused(sweep):
    """Lambdas may change on resume (points are named by lambda), but random networks
    drawn in the band of the old searches are not silently reused."""
    from tf_nas_seg.sweep.sweep_config import SweepConfig
    from tf_nas_seg.sweep.sweep_runner import SweepError, SweepRunner

    sweep_dir, _, _ = sweep
    config = json.loads((sweep_dir / "config.json").read_text())
    runner = SweepRunner(SweepConfig(**{**config, "lambdas": "0.01,0.5"}))
    with pytest.raises(SweepError, match="drawn in the latency band"):
        runner.stage_random()


@pytest.mark.slow  # one more training and two sweep runs (~30 s); the scoring is tested fast
def test_train_seeds_train_the_chosen_points_again_and_score_their_mean(sweep, tmp_path):
    """A finished sweep resumed with --train_seeds trains only --seed_points again, each
    with its seed, into train_seedS/; the row's score is the mean, the table gives the
    training noise, and a rerun recomputes nothing."""
    import shutil

    source, args, _ = sweep
    sweep_dir = tmp_path / "seeded"
    shutil.copytree(source, sweep_dir)
    args = [a for a in args if not a.startswith("--run_dir")] + [f"--run_dir={sweep_dir}"]
    result = _run("sweep", *args, "--train_seeds=3", "--seed_points=nope")
    assert result.returncode == 2 and "--seed_points: no point named ['nope']" in result.stderr
    result = _run("sweep", *args, "--train_seeds=0,3")  # 0: the flagfile's seed
    assert result.returncode == 2 and "repeats the seed of the first trainings (0" in (
        result.stderr)
    seeded = args + ["--train_seeds=3", "--seed_points=peer_fast_scnn_w0.25"]
    result = _run("sweep", *seeded)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("[sweep] train ") == 1
    assert "train fast_scnn x0.25 with seed 3" in result.stderr
    point = sweep_dir / "points" / "peer_fast_scnn_w0.25"
    assert json.loads((point / "train_seed3" / "config.json").read_text())["seed"] == 3
    assert (point / "train_seed3.log").is_file()
    assert not (sweep_dir / "points" / "cas_lambda0.01" / "train_seed3").exists()
    results = json.loads((sweep_dir / "results.json").read_text())
    rows = {r["name"]: r for r in results["points"]}
    peer = rows["peer_fast_scnn_w0.25"]
    runs = [r["val_miou"] for r in peer["val_miou_runs"]]
    assert [r["seed"] for r in peer["val_miou_runs"]] == [0, 3]
    assert peer["val_miou"] == pytest.approx(sum(runs) / 2)
    assert "val_miou_runs" not in rows["cas_lambda0.01"]
    assert results["training_noise"]["trainings"] == 2
    assert "Training noise" in (sweep_dir / "results.md").read_text()
    again = _run("sweep", *seeded)
    assert again.returncode == 0 and "[sweep] train" not in again.stderr
    from tf_nas_seg.sweep.pack import pack_sweep

    packed = pack_sweep(sweep_dir, tmp_path / "packed")
    assert "peer_fast_scnn_w0.25/train_seed3" in packed["finished"]
    assert (tmp_path / "packed" / "points" / "peer_fast_scnn_w0.25" / "train_seed3" /
            "model.keras").is_file()


@pytest.mark.slow  # re-runs the packed sweep (~9 s idle); the pack itself is checked fast
def test_a_packed_sweep_resumes_elsewhere_without_recomputing(sweep, tmp_path):
    """--pack keeps what a finished point is (summaries, genotypes, final models, tables,
    benchmark) and drops what no finished run reads; a copy of the pack is a sweep
    directory that reruns nothing."""
    import shutil

    sweep_dir, args, _ = sweep
    packed = tmp_path / "packed"
    result = _run("sweep", f"--run_dir={sweep_dir}", f"--pack={packed}")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert sorted(report["finished"]) == [
        "cas_lambda0.01/search", "cas_lambda0.01/train", "peer_fast_scnn_w0.25/train",
        "random_cas_00/train", "random_cas_01/train"] and report["unfinished"] == []
    names = {p.name for p in packed.rglob("*")}
    assert not names & {"checkpoints", "tensorboard", "best.keras", ".lock"}
    for point in ("cas_lambda0.01", "peer_fast_scnn_w0.25", "random_cas_00"):
        assert (packed / "points" / point / "train" / "model.keras").is_file()
        assert (packed / "points" / point / "train.log").is_file()
    assert (packed / "tables" / "cas.json.done").is_file()
    assert (packed / "points" / "random_cas_samples.json").is_file()
    assert (packed / "bench" / "bench.json").is_file()

    moved = tmp_path / "moved"
    shutil.copytree(packed, moved)
    elsewhere = tmp_path / "checkout"  # the flagfiles at another path, same contents
    elsewhere.mkdir()
    for name in ("search.cfg", "train.cfg"):
        shutil.copy(sweep_dir.parent / name, elsewhere / name)
    moved_args = [a.replace(str(sweep_dir.parent / "search.cfg"), str(elsewhere / "search.cfg"))
                  .replace(str(sweep_dir.parent / "train.cfg"), str(elsewhere / "train.cfg"))
                  for a in args if not a.startswith("--run_dir")] + [f"--run_dir={moved}"]
    assert moved_args != args + [f"--run_dir={moved}"]
    result = _run("sweep", *moved_args)
    assert result.returncode == 0, result.stderr[-3000:]
    for step in ("[sweep] latency table", "[sweep] search", "[sweep] train"):
        assert step not in result.stderr
    before = json.loads((sweep_dir / "results.json").read_text())["points"]
    after = json.loads((moved / "results.json").read_text())["points"]
    assert [(r["name"], r["val_miou"]) for r in after] == [
        (r["name"], r["val_miou"]) for r in before]
    with open(elsewhere / "train.cfg", "a") as f:  # what the recipe says may not change
        f.write("--lr=0.5\n")
    result = _run("sweep", *moved_args)
    assert result.returncode == 2 and "other contents of train_flagfile" in result.stderr


def test_pack_keeps_the_latest_checkpoint_of_unfinished_runs(sweep, tmp_path):
    import shutil

    from tf_nas_seg.sweep.pack import PackError, latest_checkpoint, pack_sweep

    sweep_dir, _, _ = sweep
    partial = tmp_path / "partial"
    shutil.copytree(sweep_dir, partial, ignore=shutil.ignore_patterns(".lock"))
    train = partial / "points" / "peer_fast_scnn_w0.25" / "train"
    (train / "train_summary.json").unlink()  # as if it had been stopped mid-run
    checkpoints = train / "checkpoints"
    latest = latest_checkpoint(checkpoints)
    assert latest, sorted(p.name for p in checkpoints.iterdir())
    (checkpoints / "ckpt-old.index").write_bytes(b"an older checkpoint")

    report = pack_sweep(partial, tmp_path / "finished_only")
    assert "peer_fast_scnn_w0.25/train" not in report["finished"] + report["unfinished"]
    assert not (tmp_path / "finished_only" / "points" / "peer_fast_scnn_w0.25" /
                "train").exists()

    report = pack_sweep(partial, tmp_path / "with_unfinished", unfinished=True)
    assert report["unfinished"] == ["peer_fast_scnn_w0.25/train"]
    kept = tmp_path / "with_unfinished" / "points" / "peer_fast_scnn_w0.25" / "train"
    names = sorted(p.name for p in (kept / "checkpoints").iterdir())
    assert names and all(n == "checkpoint" or n.startswith(latest + ".") for n in names)
    assert latest_checkpoint(kept / "checkpoints") == latest
    assert (kept / "config.json").is_file() and not (kept / "tensorboard").exists()
    report = pack_sweep(partial, tmp_path / "small", unfinished=True, max_checkpoint_mib=0)
    assert report["unfinished"] == [] and report["left_out"] == ["peer_fast_scnn_w0.25/train"]
    assert not (tmp_path / "small" / "points" / "peer_fast_scnn_w0.25" / "train").exists()

    with pytest.raises(PackError, match="outside the sweep directory"):
        pack_sweep(partial, partial / "pack")
    with pytest.raises(PackError, match="not a sweep directory"):
        pack_sweep(tmp_path / "finished_only" / "points", tmp_path / "x")


def test_order_points_trains_each_searched_network_after_its_search(tmp_path):
    from tf_nas_seg.sweep.sweep_config import SweepConfig
    from tf_nas_seg.sweep.sweep_runner import SweepRunner

    (tmp_path / "search.cfg").write_text(SEARCH)
    (tmp_path / "train.cfg").write_text(TRAIN)
    calls = []

    def run_child(module, argv, log_path, what):
        run_dir = next(a.split("=", 1)[1] for a in argv if a.startswith("--run_dir="))
        calls.append((module.rsplit(".", 1)[-1], Path(run_dir).parent.name))
        summary = "search_summary.json" if module.endswith("search") else "train_summary.json"
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        (Path(run_dir) / summary).write_text('{"status": "completed"}')
        return 0.0

    for order in ("points", "stages"):
        calls.clear()
        runner = SweepRunner(SweepConfig(
            run_dir=str(tmp_path / order), methods="cas", lambdas="0.1,0.2", cost="macs",
            cas_flagfile=str(tmp_path / "search.cfg"),
            train_flagfile=str(tmp_path / "train.cfg"), random=0, random_band=0.0,
            peers="fast_scnn", order=order, stop_after="train"))
        runner.run_child = run_child
        runner.write_results = lambda: {}
        assert runner.run()["status"] == "stopped"
        if order == "points":
            assert calls == [("search", "cas_lambda0.1"), ("train", "cas_lambda0.1"),
                             ("search", "cas_lambda0.2"), ("train", "cas_lambda0.2"),
                             ("train", "peer_fast_scnn")]
        else:
            assert calls == [("search", "cas_lambda0.1"), ("search", "cas_lambda0.2"),
                             ("train", "cas_lambda0.1"), ("train", "cas_lambda0.2"),
                             ("train", "peer_fast_scnn")]


def test_budget_points_search_with_the_budget_form(tmp_path):
    from tf_nas_seg.sweep.sweep_config import SweepConfig
    from tf_nas_seg.sweep.sweep_runner import SweepRunner

    (tmp_path / "search.cfg").write_text(SEARCH)
    (tmp_path / "train.cfg").write_text(TRAIN)
    searches = {}

    def run_child(module, argv, log_path, what):
        run_dir = next(a.split("=", 1)[1] for a in argv if a.startswith("--run_dir="))
        if module.endswith("search"):
            searches[Path(run_dir).parent.name] = (what, argv)
        summary = "search_summary.json" if module.endswith("search") else "train_summary.json"
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        (Path(run_dir) / summary).write_text('{"status": "completed"}')
        return 0.0

    runner = SweepRunner(SweepConfig(
        run_dir=str(tmp_path / "sweep"), methods="cas", lambdas="0.1", targets="0.4,0.25",
        exact_targets="0.3", budget_lambda=2.0, cost="macs", cas_flagfile=str(tmp_path / "search.cfg"),
        train_flagfile=str(tmp_path / "train.cfg"), random=0, random_band=0.0, peers="",
        stop_after="searches"))
    runner.run_child = run_child
    runner.write_results = lambda: {}
    assert runner.run()["status"] == "stopped"
    # Budgets replace the lambdas of the method: one search per budget, none per lambda.
    assert sorted(searches) == ["cas_exact0.3", "cas_target0.25", "cas_target0.4"]
    what, argv = searches["cas_target0.25"]
    assert what == "search cas ≤0.25 GMACs"
    assert {"--cost_form=budget", "--cost_target=0.25", "--cost_lambda=2.0",
            "--cost=macs"} <= set(argv)
    what, argv = searches["cas_exact0.3"]
    assert what == "search cas =0.3 GMACs"
    assert {"--cost_form=target", "--cost_target=0.3", "--cost_lambda=2.0"} <= set(argv)
    assert not any(a.startswith("--cost_form=budget") for a in argv)


def test_a_search_added_after_the_draw_keeps_the_random_networks_of_the_named_band(sweep):
    """--random_band_from names the searches whose band the random networks were drawn
    in: another search added later does not invalidate the draw, a wrong name is clear."""
    from tf_nas_seg.sweep.sweep_config import SweepConfig
    from tf_nas_seg.sweep.sweep_runner import SweepError, SweepRunner

    sweep_dir, _, _ = sweep
    config = json.loads((sweep_dir / "config.json").read_text())
    samples = sweep_dir / "points" / "random_cas_samples.json"
    before = samples.read_bytes()
    added = {**config, "lambdas": "0.01,0.5", "random_band_from": "cas_lambda0.01"}
    SweepRunner(SweepConfig(**added)).stage_random()
    assert samples.read_bytes() == before
    wrong = SweepRunner(SweepConfig(**{**added, "random_band_from": "cas_lambda0.02"}))
    with pytest.raises(SweepError, match="not searched points of this sweep"):
        wrong.stage_random()


def test_random_near_draws_its_own_group_in_the_band_of_the_named_searches(sweep, tmp_path):
    """--random_near adds random networks drawn around the named searches' predicted
    latency, from a stream of their own: the wide band's draw is untouched, the new
    points join the sweep, and a drawn group refuses another band fraction."""
    import shutil

    from tf_nas_seg.space.genotype import Genotype
    from tf_nas_seg.sweep.random_archs import predict_ms
    from tf_nas_seg.sweep.sweep_config import SweepConfig
    from tf_nas_seg.sweep.sweep_runner import SweepError, SweepRunner

    source, _, _ = sweep
    sweep_dir = tmp_path / "near"
    shutil.copytree(source, sweep_dir)
    config = {**json.loads((sweep_dir / "config.json").read_text()),
              "run_dir": str(sweep_dir)}
    wide = (sweep_dir / "points" / "random_cas_samples.json").read_bytes()
    near = {**config, "random_near": 2, "random_near_band": 1.0,
            "random_near_from": "cas_lambda0.01"}
    runner = SweepRunner(SweepConfig(**near))
    runner.stage_random()
    assert (sweep_dir / "points" / "random_cas_samples.json").read_bytes() == wide
    samples = json.loads((sweep_dir / "points" / "random_cas_near_samples.json").read_text())
    assert samples["band_points"] == ["cas_lambda0.01"] and samples["stream"] == 7920
    low, high, fraction = samples["band"]
    assert fraction == 1.0 and len(samples["archs"]) == 2
    space, table = runner._random_space("cas")
    searched = Genotype.load(str(sweep_dir / "points" / "cas_lambda0.01" / "search" /
                                 "genotype.json"))
    assert low == high == pytest.approx(predict_ms(table, space, searched), rel=1e-6)
    wide_archs = [a["genotype"] for a in json.loads(wide)["archs"]]
    for i, arch in enumerate(samples["archs"]):
        genotype = Genotype.load(str(sweep_dir / "points" / f"random_cas_near_{i:02d}" /
                                     "genotype.json"))
        assert genotype.to_json() == arch["genotype"]
        predicted = predict_ms(table, space, genotype)
        assert predicted == pytest.approx(arch["predicted_ms"], rel=1e-6)
        assert 0.0 <= predicted <= 2 * high * (1 + 1e-6)
    assert samples["archs"][0]["genotype"] != wide_archs[0]  # another stream
    points = {p["name"]: p for p in runner.points()}
    assert points["random_cas_near_01"]["label"] == "random cas near 1"
    assert points["random_cas_near_01"]["kind"] == "random"
    with pytest.raises(SweepError, match="drawn within 1 of the searched latencies"):
        SweepRunner(SweepConfig(**{**near, "random_near_band": 0.5})).stage_random()
    with pytest.raises(ValueError, match="needs --cost=latency"):
        SweepConfig(**{**near, "cost": "macs", "random_band": 0.0})
    elsewhere = SweepRunner(SweepConfig(**{**near, "random": 0, "random_methods": "autortnet",
                                           "methods": "cas,autortnet"}))
    with pytest.raises(SweepError, match="names none: name searched points of autortnet"):
        elsewhere.stage_random()


def test_budgets_must_be_positive():
    from tf_nas_seg.sweep.sweep_config import SweepConfig

    assert SweepConfig(lambdas="0.1", autortnet_targets="14,18").target_list("autortnet") == [
        14.0, 18.0]
    assert SweepConfig(lambdas="0.1", autortnet_targets="14").target_list("cas") == []
    with pytest.raises(ValueError, match="a budget must be > 0"):
        SweepConfig(targets="10,0")
    with pytest.raises(ValueError, match="a budget must be > 0"):
        SweepConfig(autortnet_exact_targets="16,0")


def test_table_builds_get_the_search_flags_less_the_search_only_ones():
    from tf_nas_seg.search.search_config import table_argv

    argv = ["--flagfile=search.cfg", "--data_dir=/data", "--nobn_running_stats",
            "--arch_lr=0.01", "--channels=8", "--target_height=360"]
    assert table_argv(argv) == ["--flagfile=search.cfg", "--channels=8",
                                "--target_height=360"]
