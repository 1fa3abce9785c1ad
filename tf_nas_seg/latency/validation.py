"""How well a latency table predicts the measured latency of whole derived networks."""

import functools
import json
import os
import sys
import time

import numpy as np

from tf_nas_seg.ops.op_set import NONE_OPS, get_op_set
from tf_nas_seg.latency.timer import time_stats
from tf_nas_seg.latency.profiles import get_profile
from tf_nas_seg.space.genotype import write_json_atomic
from tf_nas_seg.errors import ConfigError

# Candidates drawn per requested architecture before picking an even spread of them
# over the predicted-latency range (predictions are table sums: cheap).
POOL_FACTOR = 25


def _print(message):
    print(message, file=sys.stderr, flush=True)


def rank(values):
    """Ranks 1..n, ties given their average rank (as Spearman's rho needs)."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    for v in np.unique(values):
        tied = values == v
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(a, b):
    """Spearman rank correlation (Pearson correlation of tie-averaged ranks)."""
    ra, rb = rank(a), rank(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = np.sqrt((ra ** 2).sum() * (rb ** 2).sum())
    return float((ra * rb).sum() / denominator) if denominator > 0 else float("nan")


def summarize(predicted, measured, tolerance=0.10):
    """MAPE (%), Spearman rho and the fraction within +-tolerance of measured."""
    predicted = np.asarray(predicted, dtype=np.float64)
    measured = np.asarray(measured, dtype=np.float64)
    error = (predicted - measured) / measured
    rho = spearman(predicted, measured)
    return {"num_archs": int(len(measured)),
            "mape_pct": float(100 * np.mean(np.abs(error))),
            # JSON has no NaN: undefined (all predictions equal) is null
            "spearman": None if np.isnan(rho) else rho,
            "within_10pct": float(np.mean(np.abs(error) <= tolerance)),
            "mean_error_pct": float(100 * np.mean(error)),
            "max_abs_error_pct": float(100 * np.max(np.abs(error)))}


def sample_architectures(table, num_archs, seed, stream=0):
    """`num_archs` random derived architectures spread from cheap to expensive.

    Each candidate draws its own op mix per cell type (Dirichlet(0.5) over the
    derivable ops, so some lean on pools and skips, others on stacked convolutions),
    then an op and k = 2 inputs per node. From POOL_FACTOR * num_archs candidates, the
    ones at evenly spaced quantiles of the table's prediction are kept.

    Args:
        table: The LatencyTable (its space and predictions).
        num_archs: Architectures wanted.
        seed: Seed of the sample.
        stream: 0 for validation; calibration draws from stream 1, so the networks a
            table is calibrated on are never the ones it is validated on.

    Returns:
        [(genotype, predicted ms)], cheapest first.
    """
    space = table.meta["space"]
    profile = get_profile(space["method"])
    rng = np.random.default_rng(seed if stream == 0 else [seed, stream])
    pool = []
    for _ in range(POOL_FACTOR * num_archs):
        mix = {}
        for cell_type, op_set in profile.op_sets(space).items():
            n = sum(o not in NONE_OPS for o in get_op_set(op_set).ops)
            mix[cell_type] = rng.dirichlet(np.full(n, 0.5))
        genotype = profile.sample_genotype(space, rng, mix)
        keys = [e.key for e in profile.network_entries(space, genotype)]
        pool.append((table.predict(keys), genotype))
    pool.sort(key=lambda p: p[0])
    picks = np.unique(np.round(np.linspace(0, len(pool) - 1, num_archs)).astype(int))
    return [(pool[i][1], pool[i][0]) for i in picks]


def _table_sum(table, genotype):
    """The table's uncalibrated prediction of the network of `genotype`."""
    space = table.meta["space"]
    keys = [e.key for e in get_profile(space["method"]).network_entries(space, genotype)]
    return table.predict(keys, calibrated=False)


def _infer(model, images):
    return model(images, training=False)


def measure_networks(table, genotypes, timer, batch, passes=8, seed=0, state=None,
                     on_pass=None, max_rounds=0):
    """Median end-to-end latency (ms) of derived networks, all timed in interleaved rounds.

    Every network is traced and warmed up first; then each of `passes` rounds gives
    every network 1/passes of the timer's repeats and seconds, in a new seeded order.
    The machine's speed drifts (on a shared VM by 10-20% over a minute), so a network
    measured in one block reads that drift as its own cost: measured in chunks, the
    same 20 AutoRTNet networks at 768x1536 ranked with Spearman 0.83 against their
    interleaved medians. Interleaving every network over the same rounds gives each the
    same mix of fast and slow moments.

    Args:
        table: The LatencyTable (its space).
        genotypes: The networks.
        timer: A CompiledTimer with the whole-network repeat settings.
        batch: Batch size.
        passes: Rounds.
        seed: Seed of the round orders.
        state: {"passes_done": n, "times_ms": [[ms, ...] per genotype]} from an
            interrupted measurement to continue (updated in place); None starts afresh.
        on_pass: Called with `state` after every round (to save it).
        max_rounds: Stop after this many rounds in this call (0: run them all); the
            state then resumes in another call, e.g. in a fresh process.

    Returns:
        One dict per genotype, in order: {"median_ms", "runs", "spread_ms", "trace_s"}.
    """
    space = table.meta["space"]
    profile = get_profile(space["method"])
    passes = max(int(passes), 1)
    if state is None:
        state = {"passes_done": 0, "times_ms": [[] for _ in genotypes]}
    if len(state["times_ms"]) != len(genotypes):
        raise ConfigError(f"the saved timing state holds {len(state['times_ms'])} networks, "
                         f"not {len(genotypes)}")
    images = timer.inputs([(space["height"], space["width"], 3)], batch, scale=60.0,
                          offset=120.0)
    handles = []
    for genotype, saved in zip(genotypes, state["times_ms"]):
        model = profile.build_network(space, genotype, batch)
        handle = timer.prepare(functools.partial(_infer, model), images)
        handle["times"].extend(t / 1e3 for t in saved)
        handles.append(handle)
    rng = np.random.default_rng([seed, 7])
    orders = [rng.permutation(len(genotypes)) for _ in range(passes)]
    last = passes if not max_rounds else min(passes, state["passes_done"] + max_rounds)
    for round_ in range(state["passes_done"], last):
        timer.sample_round(handles, passes, orders[round_])
        state["times_ms"] = [[round(1e3 * t, 5) for t in h["times"]] for h in handles]
        state["passes_done"] = round_ + 1
        if on_pass is not None:
            on_pass(state)
    return [timer.result(h) if h["times"] else None for h in handles]


def fit_calibration(raw, measured, seed, passes, seconds):
    """The calibration dict of a fit measured ~ offset + scale * raw (table sums).

    Raises:
        ValueError: No positive relation (a busy machine).
    """
    raw, measured = np.asarray(raw, np.float64), np.asarray(measured, np.float64)
    scale, offset = np.polyfit(raw, measured, 1)
    if not scale > 0:
        raise ConfigError(f"calibration found no positive relation between the table's "
                         f"sums and measured latencies (scale {scale:.3f}); the machine is "
                         "probably busy: rebuild the table and calibrate when it is idle")
    fitted = offset + scale * raw
    return {"scale": round(float(scale), 5), "offset_ms": round(float(offset), 4),
            "num_networks": len(raw), "seed": seed, "stream": 1, "passes": passes,
            "fit_mape_pct": round(float(100 * np.mean(np.abs(fitted - measured) / measured)),
                                  2),
            "uncalibrated_mape_pct": round(float(100 * np.mean(np.abs(raw - measured)
                                                               / measured)), 2),
            "seconds": round(float(seconds), 1),
            # what the fit saw, for a user asking why a prediction is off
            "networks": [{"table_sum_ms": round(float(r), 4),
                          "measured_ms": round(float(m), 4)}
                         for r, m in zip(raw, measured)]}


def calibrate_table(table, timer, batch, num_archs, seed, progress=_print, passes=8):
    """Fits measured ~ offset + scale * (table sum) on whole networks; saves it in the table.

    Layers timed alone miss what only a whole network pays (memory traffic between
    layers, cache misses, a network's fixed costs); a linear map fitted on
    `num_archs` networks spread over the latency range (a sample disjoint from
    validation's) models it. The fit is stored in the table (`calibration`) and used by
    `LatencyTable.predict` and the search's cost model.

    Returns:
        The calibration dict.
    """
    archs = sample_architectures(table, num_archs, seed, stream=1)
    raw = [_table_sum(table, g) for g, _ in archs]
    start = time.perf_counter()
    progress(f"timing {len(archs)} networks in {passes} interleaved rounds")
    results = measure_networks(
        table, [g for g, _ in archs], timer, batch, passes, seed,
        on_pass=lambda st: progress(f"round {st['passes_done']}/{passes} done, elapsed "
                                    f"{time.perf_counter() - start:.0f} s"))
    measured = [r["median_ms"] for r in results]
    for i, m in enumerate(measured):
        progress(f"network {i}: table sum {raw[i]:.2f} ms, measured {m:.2f} ms")
    calibration = fit_calibration(raw, measured, seed, passes, time.perf_counter() - start)
    table.meta["calibration"] = calibration
    table.save()
    progress(f"calibration: measured = {calibration['offset_ms']:.2f} ms + "
             f"{calibration['scale']:.4f} x table sum (fit MAPE "
             f"{calibration['fit_mape_pct']}%, uncalibrated "
             f"{calibration['uncalibrated_mape_pct']}%)")
    return calibration


def validate_table(table, timer, batch, num_archs, seed, out, progress=_print, passes=8,
                   session_calibration_archs=0, max_rounds=0):
    """Measures random derived networks end to end and compares with the table.

    With `session_calibration_archs` N > 0, N calibration networks (calibration's
    sample, disjoint from the validated ones) are timed in the same interleaved rounds
    as the validated networks and the headline predictions use a fit on them: the
    machine's speed is then the same for the fit and the test. The summaries of the
    table's stored calibration (from an earlier `--mode=calibrate` session) and of the
    plain sums are reported beside it. Nothing is written to the table.

    Writes `out` (JSON) after every timing round, so an interrupted validation resumes
    where it stopped, and the predicted-vs-measured scatter plot next to it (.png).

    Args:
        table: A LatencyTable built for one search space.
        timer: A CompiledTimer on the table's device (whole-network repeat settings).
        batch: Batch size (the table's).
        num_archs: Architectures to measure.
        seed: Seed of the architecture sample.
        out: Report path.
        progress: Called with one line per round and per network.
        passes: Interleaved timing rounds over all networks (`measure_networks`).
        session_calibration_archs: Calibration networks timed with them (0: none; the
            headline then uses the stored calibration).
        max_rounds: Time at most this many rounds in this call (0: all); the report is
            then left "partial" for a later call (another process) to continue.

    Returns:
        The report dict.
    """
    from tf_nas_seg.viz.figures import draw_latency_scatter

    space = table.meta["space"]
    archs = sample_architectures(table, num_archs, seed)
    cal_archs = (sample_architectures(table, session_calibration_archs, seed, stream=1)
                 if session_calibration_archs else [])
    genotypes = [g for g, _ in archs] + [g for g, _ in cal_archs]
    plot = os.path.splitext(out)[0] + ".png"
    report = {"table": os.path.abspath(table.path), "table_created": table.meta.get("created"),
              "stored_calibration": table.meta.get("calibration"),
              "device": table.meta.get("device"), "settings": table.settings(),
              "seed": seed, "num_archs": len(archs), "passes": passes,
              "session_calibration_archs": len(cal_archs),
              "genotypes": [g.to_json() for g in genotypes], "architectures": [],
              "status": "partial"}
    state = None
    if os.path.exists(out):
        with open(out, encoding="utf-8") as f:
            previous = json.load(f)
        if all(previous.get(k) == report[k] for k in
               ("table_created", "stored_calibration", "seed", "passes", "genotypes")):
            state = previous.get("timing")
    start = time.perf_counter()
    measured_now = state is None or state["passes_done"] < passes
    if measured_now:
        if state:
            progress(f"resuming {out}: {state['passes_done']} of {passes} rounds done")
        progress(f"timing {len(archs)} networks (+ {len(cal_archs)} calibration networks) "
                 f"in {passes} interleaved rounds")

        def save(st):
            report["timing"] = st
            write_json_atomic(out, report)
            progress(f"round {st['passes_done']}/{passes} done, elapsed "
                     f"{time.perf_counter() - start:.0f} s")

        measure_networks(table, genotypes, timer, batch, passes, seed, state, save,
                         max_rounds)
        state = report["timing"]
        if state["passes_done"] < passes:
            return report  # partial: the next call continues
    report["timing"] = state
    stats = [time_stats([t / 1e3 for t in times]) for times in state["times_ms"]]
    raw = [_table_sum(table, g) for g in genotypes]
    if cal_archs:
        n = len(archs)
        calibration = fit_calibration(raw[n:], [t["median_ms"] for t in stats[n:]], seed,
                                      passes, time.perf_counter() - start)
        calibration["session"] = True
        report["calibration"] = calibration
        scale, offset = calibration["scale"], calibration["offset_ms"]
    else:
        report["calibration"] = report["stored_calibration"]
        scale, offset = table.calibration
    stored_scale, stored_offset = table.calibration
    rows = []
    for i, (genotype, _) in enumerate(archs):
        measured = stats[i]["median_ms"]
        predicted = offset + scale * raw[i]
        rows.append({"index": i, "predicted_ms": round(predicted, 4),
                     "stored_calibration_ms": round(stored_offset + stored_scale * raw[i], 4),
                     "uncalibrated_ms": round(raw[i], 4),
                     "measured_ms": round(measured, 4),
                     "error_pct": round(100 * (predicted - measured) / measured, 2),
                     "runs": stats[i]["runs"], "spread_ms": round(stats[i]["spread_ms"], 4),
                     "genotype": genotype.to_json()})
        if measured_now:
            progress(f"network {i}: predicted {predicted:.2f} ms, measured {measured:.2f} "
                     f"ms ({rows[-1]['error_pct']:+.1f}%)")
    report["architectures"] = rows
    measured = [r["measured_ms"] for r in rows]
    report["summary"] = summarize([r["predicted_ms"] for r in rows], measured)
    # the same networks against the stored calibration and the plain table sums
    report["summary_stored_calibration"] = summarize(
        [r["stored_calibration_ms"] for r in rows], measured)
    report["summary_uncalibrated"] = summarize([r["uncalibrated_ms"] for r in rows],
                                               measured)
    report["status"] = "complete"
    report["wall_seconds"] = round(time.perf_counter() - start, 1)
    report["plot"] = draw_latency_scatter(
        [r["predicted_ms"] for r in rows], measured, plot,
        title=(f"{space['method']} {space['height']}x{space['width']} on "
               f"{table.meta.get('device')}"), summary=report["summary"])
    write_json_atomic(out, report)
    return report
