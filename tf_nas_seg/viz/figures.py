"""Matplotlib figures of genotypes, architecture weights and search progress."""

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tf_nas_seg.utils.atomic import atomic_output  # noqa: E402

_INPUT_NAMES = ("c_{k-2}", "c_{k-1}")


def _save(fig, path):
    """Saves a figure atomically (temp file + rename) and closes it."""
    try:
        with atomic_output(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def draw_cell(cell, path, title="", input_names=_INPUT_NAMES):
    """Draws a CellGenotype as a DAG: inputs left, nodes in the middle, output right.

    Args:
        cell: A CellGenotype.
        path: PNG file to write.
        title: Figure title.
        input_names: Labels of the two input states.

    Returns:
        `path`.
    """
    n = len(cell.nodes)
    pos = {0: (0.0, 1.2), 1: (0.0, -1.2)}
    for j in range(n):
        # zigzag so that edges between consecutive nodes do not run along one line
        pos[j + 2] = (1.8 + 1.6 * j, 0.9 if j % 2 == 0 else -0.9)
    out_pos = (1.8 + 1.6 * n, 0.0)
    fig, ax = plt.subplots(figsize=(2.6 + 1.9 * n, 3.6))
    cmap = plt.get_cmap("tab20")
    ops = sorted({e.op for node in cell.nodes for e in node})
    colour = {op: cmap(i % 20) for i, op in enumerate(ops)}
    for j, node in enumerate(cell.nodes):
        for e in node:
            (x0, y0), (x1, y1) = pos[e.source], pos[j + 2]
            ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                        arrowprops=dict(arrowstyle="-|>", color=colour[e.op], lw=2,
                                        shrinkA=14, shrinkB=14))
            # labels 60% of the way along, nearer the node that sums them
            ax.text(x0 + 0.6 * (x1 - x0), y0 + 0.6 * (y1 - y0), e.op, fontsize=7,
                    ha="center",
                    va="center", color="black",
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec=colour[e.op]))
    for state in cell.concat:
        x0, y0 = pos[state]
        ax.annotate("", xy=out_pos, xytext=(x0, y0),
                    arrowprops=dict(arrowstyle="-|>", color="0.6", lw=1, ls="--",
                                    shrinkA=14, shrinkB=14))
    for state, (x, y) in pos.items():
        label = input_names[state] if state < 2 else str(state - 2)
        ax.text(x, y, label, ha="center", va="center", fontsize=9,
                bbox=dict(boxstyle="circle" if state >= 2 else "round",
                          fc="#cfe2f3" if state < 2 else "#fde9c9", ec="0.3"))
    ax.text(*out_pos, "out", ha="center", va="center", fontsize=9,
            bbox=dict(boxstyle="round", fc="#d9ead3", ec="0.3"))
    ax.set_xlim(-0.7, out_pos[0] + 0.7)
    ax.set_ylim(-2.0, 2.0)
    ax.axis("off")
    ax.set_title(title or f"{cell.op_set} cell", fontsize=10)
    return _save(fig, path)


def draw_arch_weights(panels, path):
    """Heatmaps of op probabilities per edge, one panel per cell type.

    Args:
        panels: {title: (probabilities [edges, ops], op names, edge labels)}.
        path: PNG file to write.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.8),
                             squeeze=False)
    for ax, (title, (probs, op_names, edge_labels)) in zip(axes[0], panels.items()):
        probs = np.asarray(probs)
        im = ax.imshow(probs, aspect="auto", cmap="viridis", vmin=0.0,
                       vmax=max(float(probs.max()), 1e-6))
        ax.set_xticks(range(len(op_names)), op_names, rotation=70, fontsize=7)
        ax.set_yticks(range(len(edge_labels)), edge_labels, fontsize=7)
        ax.set_title(title, fontsize=10)
        fig.colorbar(im, ax=ax, fraction=0.046)
    return _save(fig, path)


def draw_search_progress(history, path, cost_unit=""):
    """Per-epoch losses, architecture-split mIoU and expected cost of a search.

    Args:
        history: List of per-epoch dicts with keys epoch, weight_loss, arch_ce,
            arch_miou, expected_cost.
        path: PNG file to write.
        cost_unit: Unit of the expected cost, for the axis label.
    """
    epochs = [h["epoch"] for h in history]
    # Before architecture updates start (warm-up) nothing is measured on the
    # architecture split; the history holds 0 there, which is not a value to draw.
    arch = [h for h in history if h["arch_ce"] or h["arch_miou"]]
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6), layout="constrained")
    axes[0].plot(epochs, [h["weight_loss"] for h in history], label="weights split CE")
    axes[0].plot([h["epoch"] for h in arch], [h["arch_ce"] for h in arch],
                 label="architecture split CE")
    axes[0].set_ylabel("loss")
    axes[0].legend(fontsize=8)
    axes[1].plot([h["epoch"] for h in arch], [h["arch_miou"] for h in arch],
                 color="tab:green")
    axes[1].set_xlim(axes[0].get_xlim())
    axes[1].set_ylabel("architecture-split mIoU")
    axes[2].plot(epochs, [h["expected_cost"] for h in history], color="tab:red")
    axes[2].set_ylabel(f"expected cost {cost_unit}".strip())
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    return _save(fig, path)


def draw_prediction(image, label, prediction, info, path, title=""):
    """Draws image | ground truth | prediction side by side, with a class legend.

    Args:
        image: [H, W, 3] RGB, 0..255.
        label: [H, W] train ids (ignore label drawn black).
        prediction: [H, W] predicted train ids.
        info: The data set's DatasetInfo (class names and palette).
        path: PNG file to write.
        title: Figure title (e.g. the image name and its mIoU).
    """
    from tf_nas_seg.data.palette import colorize

    height, width = np.asarray(label).shape
    fig_width = 3 * 3.0 * width / max(height, 1) + 1.4
    fig, axes = plt.subplots(1, 3, figsize=(fig_width, 3.4))
    panels = (np.clip(np.asarray(image), 0, 255).astype(np.uint8), colorize(label, info),
              colorize(prediction, info))
    for ax, panel, name in zip(axes, panels, ("image", "ground truth", "prediction")):
        ax.imshow(panel, interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    handles = [matplotlib.patches.Patch(color=np.asarray(c) / 255.0, label=n)
               for n, c in zip(info.class_names, info.palette)]
    fig.legend(handles=handles, loc="center right", fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(right=1 - 1.3 / fig_width, wspace=0.03)
    return _save(fig, path)


def draw_training_curves(history, path):
    """Plots training loss and validation mIoU against the iteration.

    Args:
        history: List of dicts with "step", "train_loss" and optionally "val_miou".
        path: PNG file to write.
    """
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    steps = [h["step"] for h in history]
    ax.plot(steps, [h["train_loss"] for h in history], color="tab:red", label="train loss")
    ax.set_xlabel("iteration")
    ax.set_ylabel("train loss", color="tab:red")
    evals = [h for h in history if h.get("val_miou") is not None]
    if evals:
        ax2 = ax.twinx()
        ax2.plot([h["step"] for h in evals], [h["val_miou"] for h in evals], "o-",
                 color="tab:blue", label="val mIoU")
        ax2.set_ylabel("val mIoU", color="tab:blue")
        ax2.set_ylim(0, 1)
    ax.set_title("training")
    fig.tight_layout()
    return _save(fig, path)


def draw_depths(history, path, initial_cells, warmup_epochs=0):
    """Depth of each hyper-cell per epoch, as AutoRTNet Fig. 5.

    Per hyper-cell h, a step line of the depth argmax(beta_h) + 1 (blue, "actual cell
    number"), the expected depth sum_k P(k) (k + 1) (red), and the mean depth of the
    samples drawn during the epoch (grey dots); the warm-up epochs (beta frozen) are
    shaded.

    Args:
        history: Per-epoch dicts with keys epoch, depth_h, expected_depth_h and
            sampled_depth_h for h = 1..len(initial_cells).
        path: PNG file to write.
        initial_cells: Initial cells per hyper-cell (the upper end of each axis).
        warmup_epochs: Epochs with frozen beta.
    """
    epochs = [h["epoch"] for h in history]
    count = len(initial_cells)
    fig, axes = plt.subplots(count, 1, figsize=(7, 2.2 * count), sharex=True,
                             squeeze=False)
    for i, ax in enumerate(axes[:, 0]):
        key = i + 1
        ax.step(epochs, [h[f"depth_{key}"] for h in history], where="post",
                color="tab:blue", label="depth (argmax beta)")
        ax.plot(epochs, [h[f"expected_depth_{key}"] for h in history], color="tab:red",
                label="expected depth")
        ax.plot(epochs, [h.get(f"sampled_depth_{key}", np.nan) for h in history], ".",
                color="0.5", label="mean sampled depth")
        if warmup_epochs:
            ax.axvspan(-0.5, warmup_epochs - 0.5, color="0.9", label="beta frozen")
        ax.set_ylim(0.5, initial_cells[i] + 0.5)
        ax.set_ylabel(f"hyper-cell {key}\ncells")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("epoch")
    return _save(fig, path)


def draw_latency_scatter(predicted, measured, path, title="", summary=None):
    """Predicted vs measured network latency with the y = x line and a +-10% band.

    Args:
        predicted: Table predictions (ms), one per network.
        measured: Measured latencies (ms).
        path: PNG file to write.
        title: Figure title.
        summary: Optional dict with mape_pct, spearman, within_10pct, shown in a corner.

    Returns:
        `path`.
    """
    predicted = np.asarray(predicted, dtype=np.float64)
    measured = np.asarray(measured, dtype=np.float64)
    low = 0.9 * min(predicted.min(), measured.min())
    high = 1.1 * max(predicted.max(), measured.max())
    line = np.linspace(low, high, 2)
    fig, ax = plt.subplots(figsize=(5.2, 5.0))
    ax.fill_between(line, 0.9 * line, 1.1 * line, color="0.9", label="+-10%")
    ax.plot(line, line, color="0.3", lw=1, label="y = x")
    ax.scatter(measured, predicted, s=22, color="tab:blue", zorder=3, label="networks")
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_xlabel("measured latency (ms)")
    ax.set_ylabel("predicted by the table (ms)")
    if summary:
        rho = summary.get("spearman")
        ax.text(0.03, 0.97, f"MAPE {summary['mape_pct']:.1f}%\n"
                f"Spearman {'n/a' if rho is None else f'{rho:.3f}'}\n"
                f"within +-10%: {100 * summary['within_10pct']:.0f}%",
                transform=ax.transAxes, va="top", fontsize=9,
                bbox=dict(boxstyle="round", fc="white", ec="0.7"))
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


_METHOD_COLORS = {"cas": "tab:blue", "autortnet": "tab:orange", "darts": "tab:green"}


# Where a point's label may go, in points from it (tried in order): right, above or
# below, then left.
_LABEL_OFFSETS = (((6, 4), "left"), ((6, -11), "left"), ((6, 13), "left"),
                  ((6, -20), "left"), ((-6, 4), "right"), ((-6, -11), "right"),
                  ((-6, 13), "right"), ((-6, -20), "right"), ((6, 22), "left"),
                  ((6, -29), "left"))


def _place_labels(fig, ax, labels):
    """Annotates each (text, (x, y), colour) at the first offset where its text overlaps
    neither an earlier label nor a labelled point (close points of a sweep otherwise
    print their names over each other)."""
    ax.autoscale_view()
    renderer = fig.canvas.get_renderer()
    points = [ax.transData.transform(xy) for _, xy, _ in labels]
    placed = []
    for text, xy, color in labels:
        for k, (offset, align) in enumerate(_LABEL_OFFSETS):
            note = ax.annotate(text, xy, xytext=offset, textcoords="offset points",
                               fontsize=8, color=color, ha=align)
            box = note.get_window_extent(renderer).expanded(1.05, 1.1)
            clear = not any(box.overlaps(other) for other in placed) and not any(
                box.contains(px, py) for px, py in points)
            if clear or k == len(_LABEL_OFFSETS) - 1:
                placed.append(box)
                break
            note.remove()


def draw_pareto(rows, front, random_stats=None, path="pareto.png", title=""):
    """mIoU against measured latency, one labelled point per network of a sweep.

    Searched networks are filled circles in their method's colour, random ones small
    open circles of that colour with their mean +- 2 sd drawn as an error bar at their
    mean latency and, where there are enough of them, their least-squares line on
    latency +- 2 residual sd over their latency range; peers black squares; the Pareto
    front is a dashed step line. A network trained more than once (a sweep's
    --train_seeds) is drawn at its mean with +- 1 sd of its trainings.

    Args:
        rows: Sweep rows (`sweep.results.collect_point`) with `latency_median_ms` and
            `val_miou`.
        front: Names of the rows on the Pareto front.
        random_stats: {method: {mean, sd, latency_mean_ms, ...}} of the random networks.
        path: PNG file to write.
        title: Figure title.

    Returns:
        `path`.
    """
    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    labels = []  # (text, (x, y), colour) of the searched networks and the peers
    for r in rows:
        x, y = r["latency_median_ms"], 100 * r["val_miou"]
        color = _METHOD_COLORS.get(r.get("method"), "0.4")
        if r.get("val_miou_runs"):  # trained more than once: +- 1 sd of the trainings
            ax.errorbar(x, y, yerr=100 * r["val_miou_sd"], fmt="none",
                        color="black" if r["kind"] == "peer" else color, lw=1,
                        capsize=2, zorder=3)
        if r["kind"] == "searched":
            ax.scatter(x, y, s=60, color=color, edgecolor="black", zorder=4)
            labels.append((r["label"], (x, y), color))
        elif r["kind"] == "peer":
            ax.scatter(x, y, s=60, marker="s", color="black", zorder=4)
            labels.append((r["label"], (x, y), "black"))
        else:
            ax.scatter(x, y, s=26, facecolor="none", edgecolor=color, zorder=3)
    for method, s in (random_stats or {}).items():
        if s.get("sd") is None or "latency_mean_ms" not in s:
            continue
        color = _METHOD_COLORS.get(method, "0.4")
        ax.errorbar(s["latency_mean_ms"], 100 * s["mean"], yerr=200 * s["sd"], fmt="x",
                    color=color, capsize=4, alpha=0.8, zorder=3,
                    label=f"random {method}: mean +- 2 sd (n={s['n']})")
        trend = s.get("trend")
        if trend is not None:
            xs = np.array(trend["latency_range_ms"], dtype=np.float64)
            ys = 100 * (trend["intercept"] + trend["slope_per_ms"] * xs)
            band = 200 * trend["residual_sd"]
            ax.plot(xs, ys, color=color, lw=1, alpha=0.8, zorder=2,
                    label=f"random {method}: line on latency +- 2 residual sd")
            ax.fill_between(xs, ys - band, ys + band, color=color, alpha=0.08, zorder=1)
    on_front = sorted((r for r in rows if r["name"] in set(front)),
                      key=lambda r: r["latency_median_ms"])
    if len(on_front) > 1:
        ax.step([r["latency_median_ms"] for r in on_front],
                [100 * r["val_miou"] for r in on_front], where="post", ls="--",
                color="0.5", lw=1, label="Pareto front", zorder=2)
    for method in sorted({r.get("method") for r in rows if r["kind"] == "searched"}):
        ax.scatter([], [], s=60, color=_METHOD_COLORS.get(method, "0.4"),
                   edgecolor="black", label=f"searched ({method})")
    if any(r["kind"] == "random" for r in rows):
        ax.scatter([], [], s=26, facecolor="none", edgecolor="0.4", label="random")
    if any(r["kind"] == "peer" for r in rows):
        ax.scatter([], [], s=60, marker="s", color="black", label="hand-designed peers")
    _place_labels(fig, ax, labels)
    ax.set_xlabel("measured latency, batch 1 (ms, median)")
    if any(r.get("val_miou_runs") for r in rows):
        ax.errorbar([], [], yerr=[], fmt="none", color="0.4", lw=1, capsize=2,
                    label="trained several times: mean +- 1 sd")
        ax.set_ylabel("val mIoU, final checkpoint, mean over trainings (%)")
    else:
        ax.set_ylabel("val mIoU, final checkpoint (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title or "accuracy against measured latency", fontsize=10)
    return _save(fig, path)
