"""A sweep's table, verdicts and Pareto plot, computed from the files its points wrote.

Everything here reads files only (train and search summaries, the shared benchmark, the
latency tables), so `bin/plot SWEEP_DIR` redraws it all without running anything.

The verdicts are the papers' claim put as questions with numbers:

- random baseline: a searched network "beats random" when its final-checkpoint val mIoU
  is above mean + 2 sd of the random networks of its method (sd with ddof = 1);
- random at equal latency: with at least `MIN_TREND_POINTS` timed random networks of its
  method, the least-squares line of their mIoU on their measured latency is the random
  baseline at each latency; a searched network "beats random at equal latency" when its
  mIoU is more than 2 residual sd (ddof = 2) above the line at its own latency. The band
  mean + 2 sd mixes the random networks' latencies: in a band where slower networks are
  more accurate, it asks a fast searched network to beat slower random ones. Outside
  the random networks' latency range the line is extrapolated (said so);
- peers: for each peer, the searched network's mIoU minus the peer's and its measured
  latency relative to the peer's; it "beats the peer at equal or lower latency" when it
  is at most as slow and more accurate;
- Pareto front: no other network of the sweep is at most as slow and at least as
  accurate (one of the two strictly).
"""

import os

import numpy as np

from tf_nas_seg.space.genotype import Genotype, write_json_atomic
from tf_nas_seg.utils.atomic import atomic_output
from tf_nas_seg.utils.json_files import read_json

SCHEMA_VERSION = 1
MIN_TREND_POINTS = 4  # a line through 3 points leaves 1 degree of freedom for its sd


def _read(path):
    return read_json(path)


def collect_point(point, bench_entry=None, space_table=None):
    """One point's row: what it is, its scores, cost and timing where known.

    Args:
        point: A point dict of `SweepRunner.points()`.
        bench_entry: Its entry in the shared benchmark report, if timed.
        space_table: (space, LatencyTable or None) of its method, for the prediction.
    """
    row = {k: point.get(k) for k in ("name", "label", "kind", "method", "lambda", "target",
                                     "form", "peer", "width", "index", "group")}
    row = {k: v for k, v in row.items() if v not in (None, "")}
    row["status"] = "pending"
    if point["kind"] == "searched":
        search = _read(os.path.join(point["search_dir"], "search_summary.json"))
        if search is not None and search.get("status") == "completed":
            row["status"] = "searched"
            row["search_wall_seconds"] = search.get("wall_time_seconds")
            row["search_arch_miou"] = search.get("final", {}).get("arch_miou")
            if "depths" in search:
                row["depths"] = search["depths"]
    genotype_path = point.get("genotype")
    if genotype_path and os.path.exists(genotype_path):
        row["genotype"] = genotype_path
        if space_table is not None and space_table[1] is not None:
            from tf_nas_seg.sweep.random_archs import predict_ms

            space, table = space_table
            row["predicted_ms"] = predict_ms(table, space, Genotype.load(genotype_path))
    train = _read(os.path.join(point["train_dir"], "train_summary.json"))
    if train is not None and train.get("status") == "completed":
        final = train["final_val"]
        row.update({
            "status": "trained",
            "val_miou": final["miou"], "val_pixel_accuracy": final["pixel_accuracy"],
            "per_class_iou": final["per_class_iou"],
            "best_val_miou": train["best_val_miou"], "best_step": train["best_step"],
            "iterations": train["iterations"], "params": train["params"],
            "train_wall_seconds": train["wall_time_seconds"],
            "model": train["model"]})
        _add_seed_runs(row, point, final["miou"])
    elif train is not None:
        row["status"] = "training"
        row["iterations_done"] = train.get("iterations_done")
    if bench_entry is not None:
        lat = bench_entry["latency"]
        row.update({"latency_median_ms": lat["median_ms"], "latency_p90_ms": lat["p90_ms"],
                    "latency_runs": lat["runs"], "macs": bench_entry.get("macs"),
                    "timed_at": bench_entry["resolution"]})
        row["status"] = "timed" if row["status"] == "trained" else row["status"]
        row.setdefault("params", bench_entry.get("params"))
    return row


def _add_seed_runs(row, point, first_miou):
    """With --train_seeds: the point's other finished trainings. `val_miou` becomes the
    mean over all its trainings (the score every verdict and the plot use), with
    `val_miou_sd` and each training in `val_miou_runs`; per-class IoU and the best-on-val
    figures stay those of the first training."""
    config = _read(os.path.join(point["train_dir"], "config.json")) or {}
    runs = [{"seed": config.get("seed"), "val_miou": first_miou}]
    pending = []
    for seed, run_dir in sorted((point.get("seed_dirs") or {}).items()):
        summary = _read(os.path.join(run_dir, "train_summary.json"))
        if summary is not None and summary.get("status") == "completed":
            runs.append({"seed": seed, "val_miou": summary["final_val"]["miou"],
                         "best_val_miou": summary["best_val_miou"],
                         "train_wall_seconds": summary["wall_time_seconds"]})
        else:
            pending.append(seed)
    if pending:
        row["seeds_pending"] = pending
    if len(runs) > 1:
        values = [r["val_miou"] for r in runs]
        row.update({"val_miou_runs": runs, "val_miou": float(np.mean(values)),
                    "val_miou_sd": float(np.std(values, ddof=1)),
                    "val_miou_first": first_miou})


def training_noise(rows):
    """{pooled_sd, dof, networks}: the sd of one training's final val mIoU around its
    network's mean, pooled over the networks trained more than once (None without
    any). A difference between two networks trained once each has sd pooled_sd * 2**0.5."""
    groups = [[run["val_miou"] for run in r["val_miou_runs"]] for r in rows
              if len(r.get("val_miou_runs", ())) > 1]
    if not groups:
        return None
    dof = sum(len(g) - 1 for g in groups)
    squares = sum(float(np.sum((np.array(g) - np.mean(g)) ** 2)) for g in groups)
    return {"pooled_sd": float(np.sqrt(squares / dof)), "dof": dof,
            "networks": len(groups), "trainings": sum(len(g) for g in groups)}


def pareto_front(rows):
    """Names of the rows no other row dominates (latency lower-or-equal, mIoU
    higher-or-equal, one strictly); rows without both figures are left out."""
    timed = [r for r in rows if "latency_median_ms" in r and "val_miou" in r]
    front = []
    for r in timed:
        dominated = any(
            o is not r and o["latency_median_ms"] <= r["latency_median_ms"]
            and o["val_miou"] >= r["val_miou"]
            and (o["latency_median_ms"] < r["latency_median_ms"]
                 or o["val_miou"] > r["val_miou"]) for o in timed)
        if not dominated:
            front.append(r["name"])
    return front


def random_stats(rows):
    """{method: {n, mean, sd, threshold = mean + 2 sd}} of the random networks' mIoU."""
    stats = {}
    for method in sorted({r["method"] for r in rows if r["kind"] == "random"}):
        values = [r["val_miou"] for r in rows
                  if r["kind"] == "random" and r["method"] == method and "val_miou" in r]
        if not values:
            continue
        sd = float(np.std(values, ddof=1)) if len(values) > 1 else None
        entry = {"n": len(values), "mean": float(np.mean(values)), "sd": sd,
                 "min": float(min(values)), "max": float(max(values))}
        lat = [r["latency_median_ms"] for r in rows if r["kind"] == "random"
               and r["method"] == method and "latency_median_ms" in r]
        if lat:
            entry["latency_mean_ms"] = float(np.mean(lat))
            entry["latency_range_ms"] = [float(min(lat)), float(max(lat))]
        if sd is not None:
            entry["threshold"] = entry["mean"] + 2 * sd
        trend = random_trend([r for r in rows if r["kind"] == "random"
                              and r["method"] == method])
        if trend is not None:
            entry["trend"] = trend
        stats[method] = entry
    return stats


def random_trend(rows):
    """{slope_per_ms, intercept, residual_sd, n, latency_range_ms}: the least-squares line
    of the rows' mIoU on their measured latency (None under MIN_TREND_POINTS timed rows
    or with one latency only)."""
    timed = [(r["latency_median_ms"], r["val_miou"]) for r in rows
             if "latency_median_ms" in r and "val_miou" in r]
    if len(timed) < MIN_TREND_POINTS:
        return None
    x, y = (np.array(v, dtype=np.float64) for v in zip(*timed))
    if np.ptp(x) <= 0:
        return None
    slope, intercept = np.polyfit(x, y, 1)
    residuals = y - (intercept + slope * x)
    return {"n": len(timed), "slope_per_ms": float(slope), "intercept": float(intercept),
            "residual_sd": float(np.sqrt(np.sum(residuals ** 2) / (len(timed) - 2))),
            "latency_range_ms": [float(x.min()), float(x.max())]}


def verdicts(rows):
    """Per searched network: against the random baseline, each peer and the front."""
    front = set(pareto_front(rows))
    stats = random_stats(rows)
    peers = [r for r in rows if r["kind"] == "peer" and "val_miou" in r]
    result = {}
    for r in rows:
        if r["kind"] != "searched" or "val_miou" not in r:
            continue
        v = {"val_miou": r["val_miou"]}
        s = stats.get(r["method"])
        if s is not None and "threshold" in s:
            v["random_mean_plus_2sd"] = s["threshold"]
            v["margin_over_random_threshold"] = r["val_miou"] - s["threshold"]
            v["beats_random"] = bool(r["val_miou"] > s["threshold"])
        timed = "latency_median_ms" in r
        trend = (s or {}).get("trend")
        if timed and trend is not None:
            lat = r["latency_median_ms"]
            expected = trend["intercept"] + trend["slope_per_ms"] * lat
            margin = r["val_miou"] - expected
            v["random_trend_at_latency"] = expected
            v["margin_over_random_trend"] = margin
            v["margin_in_residual_sd"] = (margin / trend["residual_sd"]
                                          if trend["residual_sd"] > 0 else None)
            v["beats_random_at_equal_latency"] = bool(margin > 2 * trend["residual_sd"])
            low, high = trend["latency_range_ms"]
            v["trend_extrapolated"] = bool(not low <= lat <= high)
        if timed:
            v["on_pareto_front"] = r["name"] in front
        v["peers"] = {}
        for p in peers:
            entry = {"miou_difference": r["val_miou"] - p["val_miou"]}
            if timed and "latency_median_ms" in p:
                ratio = r["latency_median_ms"] / p["latency_median_ms"]
                entry["latency_ratio"] = ratio
                entry["beats_at_equal_or_lower_latency"] = bool(
                    ratio <= 1.0 and r["val_miou"] > p["val_miou"])
            v["peers"][p["label"]] = entry
        result[r["name"]] = v
    return result


def _target(row):
    """' (19)' for a budget, ' (=19)' for a target held from both sides, '' for neither."""
    if row.get("target") is None:
        return ""
    return f" ({'=' if row.get('form') == 'target' else ''}{row['target']:g})"


def _pct(x):
    return "" if x is None else f"{100 * x:.2f}"


def _num(x, fmt):
    return "" if x is None else format(x, fmt)


def _spread(row):
    """' +- 0.84 (3)' for a network trained more than once, else ''."""
    runs = row.get("val_miou_runs")
    return "" if not runs else f" +- {_pct(row['val_miou_sd'])} ({len(runs)})"


def markdown(rows, stats, verdict, bench, noise=None):
    """The sweep's table, random baseline and verdicts as Markdown."""
    lines = ["| network | kind | method | lambda (budget) | val mIoU (final){} | best val mIoU (step) | "
             "latency median ms | p90 ms | predicted ms | params | GMACs | status |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    seeded = any("val_miou_runs" in r for r in rows)
    lines[0] = lines[0].format(": mean +- sd (trainings)" if seeded else "")
    for r in rows:
        best = (f"{_pct(r.get('best_val_miou'))} ({r['best_step']})"
                if "best_val_miou" in r else "")
        macs = r.get("macs")
        lines.append(
            f"| {r['label']} | {r['kind']} | {r.get('method', '')} | "
            f"{_num(r.get('lambda'), 'g')}"
            f"{_target(r)} | "
            f"{_pct(r.get('val_miou'))}{_spread(r)} | {best} | "
            f"{_num(r.get('latency_median_ms'), '.1f')} | "
            f"{_num(r.get('latency_p90_ms'), '.1f')} | "
            f"{_num(r.get('predicted_ms'), '.1f')} | {_num(r.get('params'), ',')} | "
            f"{_num(None if macs is None else macs / 1e9, '.3f')} | {r['status']} |")
    if bench is not None:
        env = bench.get("environment", {})
        lines.append("")
        lines.append(f"Latency: batch 1 at {bench['results'][0]['resolution'][0]}x"
                     f"{bench['results'][0]['resolution'][1]}, "
                     f"{bench['settings']['runs']} interleaved runs after "
                     f"{bench['settings']['warmup']} warm-up runs, on {env.get('cpu', '?')} "
                     f"({env.get('cpu_count', '?')} cores).")
    if stats:
        lines += ["", "| random baseline | n | mean mIoU | sd | mean + 2 sd | latency ms "
                  "| trend: mIoU per ms | trend residual sd |",
                  "|---|---|---|---|---|---|---|---|"]
        for method, s in stats.items():
            lat = s.get("latency_range_ms")
            trend = s.get("trend") or {}
            slope = trend.get("slope_per_ms")
            lines.append(f"| {method} | {s['n']} | {_pct(s['mean'])} | {_pct(s['sd'])} | "
                         f"{_pct(s.get('threshold'))} | "
                         f"{'' if lat is None else f'{lat[0]:.1f}-{lat[1]:.1f}'} | "
                         f"{'' if slope is None else f'{100 * slope:+.2f}'} | "
                         f"{_pct(trend.get('residual_sd'))} |")
    if noise is not None:
        lines += ["", f"Training noise: the final val mIoU of one training lies around its "
                  f"network's mean with sd {_pct(noise['pooled_sd'])} points (pooled over "
                  f"{noise['networks']} networks trained {noise['trainings']} times, "
                  f"{noise['dof']} degrees of freedom); a difference between two networks "
                  f"trained once each has sd {_pct(noise['pooled_sd'] * 2 ** 0.5)}."]
    if verdict:
        scored = ("mean over trainings of the final-checkpoint val mIoU" if seeded
                  else "final-checkpoint val mIoU")
        lines += ["", f"Verdicts ({scored}):", ""]
        for name, v in verdict.items():
            parts = []
            if "beats_random" in v:
                parts.append(f"{'beats' if v['beats_random'] else 'does not beat'} random "
                             f"mean + 2 sd by {100 * v['margin_over_random_threshold']:+.2f} "
                             "points")
            if "beats_random_at_equal_latency" in v:
                sds = v["margin_in_residual_sd"]
                parts.append(
                    f"{'beats' if v['beats_random_at_equal_latency'] else 'does not beat'} "
                    f"random at equal latency: {100 * v['margin_over_random_trend']:+.2f} "
                    f"points over the random trend at its latency"
                    + ("" if sds is None else f" ({sds:+.1f} residual sd)")
                    + (", extrapolated" if v["trend_extrapolated"] else ""))
            for peer, p in v["peers"].items():
                text = f"{100 * p['miou_difference']:+.2f} points vs {peer}"
                if "latency_ratio" in p:
                    text += (f" at {p['latency_ratio']:.2f}x its latency"
                             f" ({'beats it' if p['beats_at_equal_or_lower_latency'] else 'does not beat it'}"
                             " at equal or lower latency)")
                parts.append(text)
            if "on_pareto_front" in v:
                parts.append("on the Pareto front" if v["on_pareto_front"]
                             else "not on the Pareto front")
            lines.append(f"- {name}: " + "; ".join(parts) + ".")
    return "\n".join(lines) + "\n"


def write_results(sweep_dir, rows, bench, config):
    """Writes results.json, results.md and plots/pareto.png; returns the results dict."""
    from tf_nas_seg.viz.figures import draw_pareto

    stats = random_stats(rows)
    verdict = verdicts(rows)
    noise = training_noise(rows)
    wall = sum((r.get("search_wall_seconds") or 0) + (r.get("train_wall_seconds") or 0)
               + sum(run.get("train_wall_seconds") or 0
                     for run in r.get("val_miou_runs", ())[1:])
               for r in rows)
    results = {"schema_version": SCHEMA_VERSION, "config": config, "points": rows,
               "random_baseline": stats, "verdicts": verdict, "training_noise": noise,
               "pareto_front": pareto_front(rows),
               "compute_seconds": {"searches_and_training": round(wall, 1)},
               "benchmark": None if bench is None else {
                   "settings": bench.get("settings"), "environment": bench.get("environment"),
                   "matmul_peak_gflops": bench.get("matmul_peak_gflops")}}
    write_json_atomic(os.path.join(sweep_dir, "results.json"), results)
    with atomic_output(os.path.join(sweep_dir, "results.md"), suffix=".md") as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(markdown(rows, stats, verdict, bench, noise))
    plotted = [r for r in rows if "latency_median_ms" in r and "val_miou" in r]
    if plotted:
        results["plot"] = draw_pareto(plotted, results["pareto_front"], stats,
                                      os.path.join(sweep_dir, "plots", "pareto.png"))
    return results


def redraw(sweep_dir):
    """Redraws a sweep's figures from its results.json; returns the paths written."""
    from tf_nas_seg.viz.figures import draw_pareto

    results = _read(os.path.join(sweep_dir, "results.json"))
    if results is None:
        return []
    plotted = [r for r in results["points"] if "latency_median_ms" in r and "val_miou" in r]
    if not plotted:
        return []
    return [draw_pareto(plotted, results["pareto_front"], results["random_baseline"],
                        os.path.join(sweep_dir, "plots", "pareto.png"))]
