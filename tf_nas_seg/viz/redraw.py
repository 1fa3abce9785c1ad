"""Redraws every figure of a run directory from the files the run wrote.

`bin/plot RUN_DIR` tells the kind of directory by its files:

- a sweep (`results.json` beside a config with `lambdas` and `peers`, or the older
  `sweep_dir`): the Pareto plot, then
  every point's search and training directories;
- a search (`config.json` with `method`, `history.json` of epochs): the derived cells
  (`genotype.json`, or the last `genotypes/epoch_*.json` of a search in progress), the
  op probabilities (`plots/arch_weights.json`), the search progress and, for
  AutoRTNet, the hyper-cell depths;
- a training run (`config.json` with `peer`/`genotype`, `history.json` of
  evaluations): the training curves;
- a latency-table validation report (a `--mode=validate` JSON, given as the path):
  the predicted-against-measured scatter.

Prediction overlays need the trained network and the data: `bin/evaluate` draws them.
Nothing here imports TensorFlow.
"""

import glob
import os

from tf_nas_seg.errors import UserError
from tf_nas_seg.utils.json_files import read_json
from tf_nas_seg.viz import figures


class PlotError(UserError):
    """The path holds nothing bin/plot can draw; the message says what it expected."""


def _read(path):
    return read_json(path, PlotError)


def kind_of(path):
    """'sweep', 'search', 'train', 'latency_report' or None."""
    if os.path.isfile(path):
        report = _read(path)
        if isinstance(report, dict) and "architectures" in report and "summary" in report:
            return "latency_report"
        return None
    config = _read(os.path.join(path, "config.json")) or {}
    if "sweep_dir" in config or ("lambdas" in config and "peers" in config):  # old or new
        return "sweep"
    if "peer" in config and "genotype" in config:
        return "train"
    if "method" in config and "stage" in config:
        return "search"
    return None


def redraw_search(run_dir):
    from tf_nas_seg.space.genotype import Genotype

    config = _read(os.path.join(run_dir, "config.json"))
    history = _read(os.path.join(run_dir, "history.json")) or []
    plots = os.path.join(run_dir, "plots")
    written = []
    genotype_path = os.path.join(run_dir, "genotype.json")
    epochs = sorted(glob.glob(os.path.join(run_dir, "genotypes", "epoch_*.json")))
    if not os.path.exists(genotype_path) and epochs:
        genotype_path = epochs[-1]
    if os.path.exists(genotype_path):
        genotype = Genotype.load(genotype_path)
        for cell_type, cell in genotype.cells:
            if cell_type == "multiscale" and config.get("method") == "autortnet":
                continue  # AutoRTNet's multi-scale module is fixed, not searched
            written.append(figures.draw_cell(
                cell, os.path.join(plots, f"cell_{cell_type}.png"),
                title=f"{cell_type} cell ({os.path.basename(genotype_path)})"))
    weights = _read(os.path.join(plots, "arch_weights.json"))
    if weights is not None:
        panels = {k: (v["probabilities"], v["ops"], v["edges"])
                  for k, v in weights["panels"].items()}
        written.append(figures.draw_arch_weights(panels,
                                                 os.path.join(plots, "arch_weights.png")))
    if history:
        from tf_nas_seg.search.cost_model import UNITS

        cost = config.get("cost", "none")
        unit = UNITS[cost][0] if cost in UNITS else ""
        written.append(figures.draw_search_progress(
            history, os.path.join(plots, "search_progress.png"), unit))
        if config.get("method") == "autortnet" and "depth_1" in history[-1]:
            cells = [int(n) for n in str(config["hyper_cells"]).split(",")]
            written.append(figures.draw_depths(history, os.path.join(plots, "depths.png"),
                                               cells, config.get("beta_warmup_epochs", 0)))
    return written


def redraw_train(run_dir):
    history = _read(os.path.join(run_dir, "history.json"))
    if not history:
        return []
    return [figures.draw_training_curves(history,
                                         os.path.join(run_dir, "plots", "training.png"))]


def redraw_latency_report(path):
    report = _read(path)
    rows = report["architectures"]
    space = report.get("space") or {}
    title = (f"{space.get('method', '')} {space.get('height', '')}x{space.get('width', '')}"
             f" on {report.get('device', '')}")
    return [figures.draw_latency_scatter([r["predicted_ms"] for r in rows],
                                         [r["measured_ms"] for r in rows],
                                         os.path.splitext(path)[0] + ".png", title=title,
                                         summary=report["summary"])]


def redraw_sweep(sweep_dir):
    from tf_nas_seg.sweep.results import redraw

    written = redraw(sweep_dir)
    for point in sorted(glob.glob(os.path.join(sweep_dir, "points", "*"))):
        for sub, draw in (("search", redraw_search), ("train", redraw_train)):
            if os.path.isdir(os.path.join(point, sub)):
                written += draw(os.path.join(point, sub))
    return written


def redraw(path):
    """Redraws the figures of `path` (see the module docstring); returns their paths.

    Raises:
        PlotError: `path` is none of the kinds above.
    """
    if not os.path.exists(path):
        raise PlotError(f"{path}: no such file or directory")
    kind = kind_of(path)
    if kind is None:
        raise PlotError(f"{path} is not a sweep, search or training run directory (no "
                        "config.json of one) nor a latency validation report: give the "
                        "--run_dir of bin/search or bin/train, the --run_dir of "
                        "bin/sweep, or the --out JSON of bin/latency_table --mode=validate")
    return {"sweep": redraw_sweep, "search": redraw_search, "train": redraw_train,
            "latency_report": redraw_latency_report}[kind](path)
