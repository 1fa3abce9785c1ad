"""How well a latency table predicts the measured latency of whole derived networks."""

import functools
import json
import os
import sys
import time

import numpy as np

from tf_nas_seg.ops.op_set import NONE_OPS, get_op_set
from tf_nas_seg.profiling.space_profile import get_profile
from tf_nas_seg.space.genotype import Genotype, write_json_atomic

# Candidates drawn per requested architecture before picking an even spread of them
# over the predicted-latency range (predictions are table sums: cheap).
POOL_FACTOR = 25
# Networks measured together (interleaved), then saved.
NETWORK_CHUNK = 5


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


def measure_networks(table, genotypes, timer, batch, passes=3, seed=0):
    """Median end-to-end latency (ms) of derived networks, NETWORK_CHUNK at a time.

    The networks are measured in a random order (fixed by `seed`): samples come sorted
    by predicted latency, and measured in that order a slow drift of the machine's
    speed would read as an error that grows with the network's cost. Each chunk's
    networks are timed in interleaved rounds.

    Yields (index into `genotypes`, result dict) as each chunk finishes.
    """
    space = table.meta["space"]
    profile = get_profile(space["method"])
    images = timer.inputs([(space["height"], space["width"], 3)], batch, scale=60.0,
                          offset=120.0)
    order = np.random.default_rng([seed, 7]).permutation(len(genotypes))
    for chunk_start in range(0, len(order), NETWORK_CHUNK):
        chunk = [int(i) for i in order[chunk_start:chunk_start + NETWORK_CHUNK]]
        models = [profile.build_network(space, genotypes[i], batch) for i in chunk]
        results = timer.measure_many(
            [(functools.partial(_infer, model), images) for model in models], passes)
        for index, result in zip(chunk, results):
            yield index, result
        del models


def calibrate_table(table, timer, batch, num_archs, seed, progress=_print, passes=3):
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
    raw = [table.predict([e.key for e in get_profile(table.meta["space"]["method"])
                          .network_entries(table.meta["space"], g)], calibrated=False)
           for g, _ in archs]
    measured = [0.0] * len(archs)
    start = time.perf_counter()
    for done, (i, result) in enumerate(measure_networks(
            table, [g for g, _ in archs], timer, batch, passes, seed), 1):
        measured[i] = result["median_ms"]
        progress(f"[{done}/{len(archs)}] network {i}: table sum {raw[i]:.2f} ms, measured "
                 f"{measured[i]:.2f} ms  elapsed {time.perf_counter() - start:.0f} s")
    scale, offset = np.polyfit(np.asarray(raw), np.asarray(measured), 1)
    if not scale > 0:
        raise ValueError(f"calibration found no positive relation between the table's "
                         f"sums and measured latencies (scale {scale:.3f}); the machine is "
                         "probably busy: rebuild the table and calibrate when it is idle")
    fitted = offset + scale * np.asarray(raw)
    calibration = {"scale": round(float(scale), 5), "offset_ms": round(float(offset), 4),
                   "num_networks": len(archs), "seed": seed, "stream": 1,
                   "fit_mape_pct": round(float(100 * np.mean(
                       np.abs(fitted - measured) / np.asarray(measured))), 2),
                   "uncalibrated_mape_pct": round(float(100 * np.mean(
                       np.abs(np.asarray(raw) - measured) / np.asarray(measured))), 2),
                   "seconds": round(time.perf_counter() - start, 1),
                   # what the fit saw, for a user asking why a prediction is off
                   "networks": [{"table_sum_ms": round(float(r), 4),
                                 "measured_ms": round(float(m), 4)}
                                for r, m in zip(raw, measured)]}
    table.meta["calibration"] = calibration
    table.save()
    progress(f"calibration: measured = {offset:.2f} ms + {scale:.4f} x table sum "
             f"(fit MAPE {calibration['fit_mape_pct']}%, uncalibrated "
             f"{calibration['uncalibrated_mape_pct']}%)")
    return calibration


def validate_table(table, timer, batch, num_archs, seed, out, progress=_print, passes=3):
    """Measures random derived networks end to end and compares with the table.

    Writes `out` (JSON) after every network, so an interrupted validation resumes, and
    the predicted-vs-measured scatter plot next to it (.png).

    Args:
        table: A LatencyTable built for one search space.
        timer: A CompiledTimer on the table's device (whole-network repeat settings).
        batch: Batch size (the table's).
        num_archs: Architectures to measure.
        seed: Seed of the architecture sample.
        out: Report path.
        progress: Called with one line per network.
        passes: Interleaved timing rounds over each chunk of networks.

    Returns:
        The report dict.
    """
    from tf_nas_seg.viz.figures import draw_latency_scatter

    space = table.meta["space"]
    archs = sample_architectures(table, num_archs, seed)
    plot = os.path.splitext(out)[0] + ".png"
    done = {}
    if os.path.exists(out):
        with open(out, encoding="utf-8") as f:
            previous = json.load(f)
        if (previous.get("table_created") == table.meta.get("created")
                and previous.get("calibration") == table.meta.get("calibration")
                and previous.get("seed") == seed):
            done = {json.dumps(r["genotype"], sort_keys=True): r
                    for r in previous.get("architectures", [])}
    report = {"table": os.path.abspath(table.path), "table_created": table.meta.get("created"),
              "calibration": table.meta.get("calibration"),
              "device": table.meta.get("device"), "settings": table.settings(),
              "seed": seed, "num_archs": len(archs), "architectures": [],
              "status": "partial"}
    start = time.perf_counter()
    rows = {}
    todo = []
    for i, (genotype, predicted) in enumerate(archs):
        key = json.dumps(genotype.to_json(), sort_keys=True)
        if key in done:
            rows[i] = done[key]
        else:
            todo.append((i, genotype, predicted))
    for done, (position, result) in enumerate(measure_networks(
            table, [g for _, g, _ in todo], timer, batch, passes, seed), 1):
        i, genotype, predicted = todo[position]
        measured = result["median_ms"]
        rows[i] = {"index": i, "predicted_ms": round(predicted, 4),
                   "uncalibrated_ms": round(_table_sum(table, genotype), 4),
                   "measured_ms": round(measured, 4),
                   "error_pct": round(100 * (predicted - measured) / measured, 2),
                   "runs": result["runs"], "spread_ms": round(result["spread_ms"], 4),
                   "genotype": genotype.to_json()}
        progress(f"[{done}/{len(todo)}] network {i}: predicted {predicted:.2f} ms, measured "
                 f"{measured:.2f} ms ({rows[i]['error_pct']:+.1f}%)  elapsed "
                 f"{time.perf_counter() - start:.0f} s")
        report["architectures"] = [rows[k] for k in sorted(rows)]
        write_json_atomic(out, report)
    report["architectures"] = rows = [rows[i] for i in sorted(rows)]
    for row in rows:  # rows resumed from a report written before this field existed
        if "uncalibrated_ms" not in row:
            row["uncalibrated_ms"] = round(
                _table_sum(table, Genotype.from_json(row["genotype"])), 4)
    report["summary"] = summarize([r["predicted_ms"] for r in rows],
                                  [r["measured_ms"] for r in rows])
    # the same networks against the plain table sums: what the calibration changed
    report["summary_uncalibrated"] = summarize([r["uncalibrated_ms"] for r in rows],
                                               [r["measured_ms"] for r in rows])
    report["status"] = "complete"
    report["wall_seconds"] = round(time.perf_counter() - start, 1)
    report["plot"] = draw_latency_scatter(
        [r["predicted_ms"] for r in rows], [r["measured_ms"] for r in rows], plot,
        title=(f"{space['method']} {space['height']}x{space['width']} on "
               f"{table.meta.get('device')}"), summary=report["summary"])
    write_json_atomic(out, report)
    return report
