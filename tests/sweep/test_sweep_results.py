"""The sweep's verdicts, Pareto front and settings, on rows whose answers are known."""

import pytest

from tf_nas_seg.sweep.results import markdown, pareto_front, random_stats, verdicts
from tf_nas_seg.sweep.sweep_config import SweepConfig


def _row(name, kind, miou, ms, method=None, **extra):
    row = {"name": name, "label": name, "kind": kind, "val_miou": miou,
           "latency_median_ms": ms, "latency_p90_ms": ms * 1.1, "status": "timed"}
    if method:
        row["method"] = method
    return {**row, **extra}


ROWS = [
    _row("cas_a", "searched", 0.60, 20.0, "cas", **{"lambda": 0.01}),
    _row("cas_b", "searched", 0.52, 30.0, "cas", **{"lambda": 0.001}),
    _row("r0", "random", 0.50, 21.0, "cas"),
    _row("r1", "random", 0.54, 22.0, "cas"),
    _row("r2", "random", 0.52, 19.0, "cas"),
    _row("fast", "peer", 0.55, 21.0, peer="fast"),
    _row("big", "peer", 0.70, 90.0, peer="big"),
]


def test_pareto_front_keeps_exactly_the_undominated_networks():
    # cas_b (30 ms, 0.52) is dominated by cas_a (20 ms, 0.60); r0, r1, fast by cas_a;
    # r2 is the fastest; big the most accurate.
    assert sorted(pareto_front(ROWS)) == ["big", "cas_a", "r2"]
    ties = [_row("x", "random", 0.5, 10.0, "cas"), _row("y", "random", 0.5, 10.0, "cas")]
    assert sorted(pareto_front(ties)) == ["x", "y"]  # equal points dominate neither


def test_random_baseline_is_mean_plus_two_sample_sd():
    stats = random_stats(ROWS)["cas"]
    assert stats["n"] == 3 and stats["mean"] == pytest.approx(0.52)
    assert stats["sd"] == pytest.approx(0.02)  # ddof = 1
    assert stats["threshold"] == pytest.approx(0.56)
    assert stats["latency_range_ms"] == [19.0, 22.0]


def test_verdicts_say_by_how_much_and_at_what_latency():
    v = verdicts(ROWS)
    a, b = v["cas_a"], v["cas_b"]
    assert a["beats_random"] and a["margin_over_random_threshold"] == pytest.approx(0.04)
    assert not b["beats_random"] and b["margin_over_random_threshold"] == pytest.approx(-0.04)
    assert a["peers"]["fast"]["beats_at_equal_or_lower_latency"]
    assert a["peers"]["fast"]["miou_difference"] == pytest.approx(0.05)
    assert a["peers"]["fast"]["latency_ratio"] == pytest.approx(20 / 21)
    # more accurate than nothing at 90 ms: slower peers are compared, never "beaten"
    assert not a["peers"]["big"]["beats_at_equal_or_lower_latency"]
    assert a["on_pareto_front"] and not b["on_pareto_front"]
    text = markdown(ROWS, random_stats(ROWS), v, None)
    assert "- cas_a: beats random mean + 2 sd by +4.00 points" in text
    assert "+5.00 points vs fast at 0.95x its latency (beats it" in text
    assert "- cas_b: does not beat random mean + 2 sd by -4.00 points" in text


def test_untimed_points_get_no_latency_verdict():
    rows = [{**r} for r in ROWS]
    for r in rows:
        r.pop("latency_median_ms")
    v = verdicts(rows)
    assert "on_pareto_front" not in v["cas_a"]
    assert "latency_ratio" not in v["cas_a"]["peers"]["fast"]
    assert pareto_front(rows) == []


def test_peer_specs_and_bad_settings():
    config = SweepConfig(peers="fast_scnn, bisenetv2:0.5")
    assert config.peer_list() == [("fast_scnn", 1.0), ("bisenetv2", 0.5)]
    assert SweepConfig(lambdas="0.1", autortnet_lambdas="1,2").lambda_list("autortnet") == [
        1.0, 2.0]
    for bad, message in ((dict(peers="enet"), "unknown peer 'enet'"),
                         (dict(peers="bisenetv2:wide"), "width after ':'"),
                         (dict(methods="cas,nas"), "unknown method 'nas'"),
                         (dict(lambdas="0.1,x"), "'x' is not a number"),
                         (dict(lambdas=""), "--lambdas is empty"),
                         (dict(cost="macs"), "needs --cost=latency"),
                         (dict(search_args="--a='b"), "--search_args")):
        with pytest.raises(ValueError, match=message):
            SweepConfig(**bad)


# The CamVid wide sweep's five random networks (measured ms, final val mIoU) and a
# searched network faster than all of them.
STUDY = [_row(f"r{i}", "random", miou, ms, "autortnet") for i, (ms, miou) in enumerate(
    [(16.57, 0.5279), (16.74, 0.5187), (13.55, 0.4813), (14.72, 0.4921), (12.91, 0.4886)])]


def test_the_random_trend_is_the_least_squares_line_on_latency():
    trend = random_stats(STUDY)["autortnet"]["trend"]
    x = [r["latency_median_ms"] for r in STUDY]
    y = [r["val_miou"] for r in STUDY]
    n, mx, my = len(x), sum(x) / len(x), sum(y) / len(y)
    slope = (sum((a - mx) * (b - my) for a, b in zip(x, y))
             / sum((a - mx) ** 2 for a in x))
    intercept = my - slope * mx
    sd = (sum((b - intercept - slope * a) ** 2 for a, b in zip(x, y)) / (n - 2)) ** 0.5
    assert trend["slope_per_ms"] == pytest.approx(slope, rel=1e-7)  # float64, two algorithms
    assert trend["intercept"] == pytest.approx(intercept, rel=1e-7)
    assert trend["residual_sd"] == pytest.approx(sd, rel=1e-7)
    assert trend["latency_range_ms"] == [12.91, 16.74]
    # three random networks leave too few degrees of freedom: no line
    assert "trend" not in random_stats(STUDY[:3])["autortnet"]


def test_a_fast_searched_network_is_judged_against_random_at_its_own_latency():
    searched = _row("s", "searched", 0.5059, 12.91, "autortnet")
    v = verdicts(STUDY + [searched])["s"]
    # Against the band's mean + 2 sd it loses (the slower random networks lift the mean)...
    assert not v["beats_random"]
    # ...at its own latency the random line is at 48.0% and it is 2.6 points above.
    assert v["random_trend_at_latency"] == pytest.approx(0.4801, abs=5e-4)
    assert v["margin_over_random_trend"] == pytest.approx(0.0258, abs=5e-4)
    assert v["beats_random_at_equal_latency"] and not v["trend_extrapolated"]
    slow = verdicts(STUDY + [_row("t", "searched", 0.49, 20.0, "autortnet")])["t"]
    assert not slow["beats_random_at_equal_latency"] and slow["trend_extrapolated"]
    text = markdown(STUDY + [searched], random_stats(STUDY + [searched]),
                    verdicts(STUDY + [searched]), None)
    assert "beats random at equal latency: +2.58 points" in text


def _write(path, data):
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _summary(miou, best=None):
    return {"status": "completed", "final_val": {"miou": miou, "pixel_accuracy": 0.8,
                                                  "per_class_iou": [miou]},
            "best_val_miou": best or miou, "best_step": 4, "iterations": 4, "params": 10,
            "wall_time_seconds": 5.0, "model": "model.keras"}


def test_a_network_trained_with_several_seeds_is_scored_by_its_mean(tmp_path):
    """--train_seeds: val_miou is the mean over the finished trainings, the first
    training's per-class IoU stays, an unfinished seed is pending, and the pooled
    training noise is the NumPy pooled sd."""
    import numpy as np

    from tf_nas_seg.sweep.results import collect_point, training_noise

    def point(name, mious, pending=()):
        base = tmp_path / name
        _write(base / "train" / "train_summary.json", _summary(mious[0]))
        _write(base / "train" / "config.json", {"seed": 0})
        seed_dirs = {}
        for seed, miou in enumerate(mious[1:], start=1):
            _write(base / f"train_seed{seed}" / "train_summary.json", _summary(miou))
            seed_dirs[seed] = str(base / f"train_seed{seed}")
        for seed in pending:
            seed_dirs[seed] = str(base / f"train_seed{seed}")  # not started
        return {"name": name, "label": name, "kind": "peer", "peer": name, "width": 1.0,
                "dir": str(base), "train_dir": str(base / "train"), "seed_dirs": seed_dirs}

    a = collect_point(point("a", [0.50, 0.53, 0.47]))
    b = collect_point(point("b", [0.60, 0.58], pending=[3]))
    once = collect_point(point("c", [0.40]))
    assert a["val_miou"] == pytest.approx(0.50) and a["val_miou_first"] == 0.50
    assert a["val_miou_sd"] == pytest.approx(0.03)  # ddof = 1
    assert [r["seed"] for r in a["val_miou_runs"]] == [0, 1, 2]
    assert a["per_class_iou"] == [0.50]  # the first training's
    assert b["val_miou"] == pytest.approx(0.59) and b["seeds_pending"] == [3]
    assert once["val_miou"] == 0.40 and "val_miou_runs" not in once
    noise = training_noise([a, b, once])
    squares = np.sum((np.array([0.50, 0.53, 0.47]) - 0.50) ** 2) + np.sum(
        (np.array([0.60, 0.58]) - 0.59) ** 2)
    assert noise["dof"] == 3 and noise["networks"] == 2 and noise["trainings"] == 5
    assert noise["pooled_sd"] == pytest.approx(np.sqrt(squares / 3))
    assert training_noise([once]) is None
    # the verdicts and the table use the mean
    rows = [{**a, "kind": "searched", "method": "cas", "latency_median_ms": 10.0,
             "latency_p90_ms": 11.0},
            {**once, "latency_median_ms": 12.0, "latency_p90_ms": 13.0}]
    assert verdicts(rows)["a"]["peers"]["c"]["miou_difference"] == pytest.approx(0.10)
    text = markdown(rows, {}, verdicts(rows), None, noise)
    assert "| 50.00 +- 3.00 (3) |" in text and "val mIoU (final): mean +- sd" in text
    assert "Training noise: " in text and "mean over trainings" in text


def test_training_seeds_must_be_integers():
    assert SweepConfig(train_seeds="2, 1,2").seed_list() == [2, 1]
    with pytest.raises(Exception, match="--train_seeds: 'x' is not a seed"):
        SweepConfig(train_seeds="1,x")


def test_pareto_labels_of_close_points_do_not_overlap(tmp_path):
    """Searched networks a fraction of a ms and a point apart get labels that do not
    cover each other (each tries places around its point)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tf_nas_seg.viz.figures import _place_labels

    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    points = [(13.4, 51.2), (14.0, 52.2), (16.3, 51.0), (16.1, 51.9)]
    ax.scatter(*zip(*points))
    ax.set_xlim(12, 34)
    ax.set_ylim(44, 56)  # the study's ranges: these labels would collide
    names = ["autortnet =16.5 ms", "autortnet ≤19 ms", "autortnet ≤23 ms", "fast_scnn"]
    _place_labels(fig, ax, [(name, xy, "C1") for name, xy in zip(names, points)])
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    assert len(boxes) == 4
    for i in range(4):
        for j in range(i + 1, 4):
            assert not boxes[i].overlaps(boxes[j]), (ax.texts[i], ax.texts[j])
    plt.close(fig)
