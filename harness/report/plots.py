"""Report figures (PNG + SVG) with matplotlib, an optional extra: `pip install mnist-bench[plots]`."""

from __future__ import annotations

import io
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from harness.base import atomic
from harness.report.analysis import fixed_settings, flat_config
from harness.tg.models import MODELS
from harness.tg.spec import TARGETS


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, folder: Path, stem: str) -> str:
    """Both images drawn in memory, then written as every other file is (atomic.write_bytes: the folder
    made or a one-line error, never half an image)."""
    plt = _pyplot()
    png, svg = io.BytesIO(), io.BytesIO()
    fig.savefig(png, format="png", dpi=130, bbox_inches="tight")
    # no date and fixed element ids: the same data gives the same SVG, so regenerated plots diff cleanly
    with plt.rc_context({"svg.hashsalt": stem}):
        fig.savefig(svg, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    atomic.write_bytes(folder / f"{stem}.png", png.getvalue())
    atomic.write_bytes(folder / f"{stem}.svg", svg.getvalue())
    return f"{stem}.png"


def mean_loss_curve(records: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Steps and the geometric mean of the loss over seeds with its ±1 std band (in log space, so the
    band stays positive on a log axis), on the steps every seed logged."""
    curves = [dict((s, v) for s, v in r["series"]["loss"] if v is not None and v > 0) for r in records]
    steps = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
    logs = np.log(np.array([[c[s] for s in steps] for c in curves]).reshape(len(curves), len(steps)))
    mean, std = logs.mean(axis=0), logs.std(axis=0)
    return np.array(steps), np.exp(mean), np.exp(mean - std), np.exp(mean + std)


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average (shrinking at the ends), so noisy per-batch losses stay readable."""
    if window <= 1 or len(values) < 3:
        return values
    half = window // 2
    return np.array([values[max(0, i - half) : i + half + 1].mean() for i in range(len(values))])


LINE_STYLES = ("-", "--", ":", "-.")


def loss_curves(model: str, records_by_config: dict[str, list[dict[str, Any]]], folder: Path) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 5.5))
    colors = plt.get_cmap("tab10").colors
    for i, (name, records) in enumerate(sorted(records_by_config.items())):
        steps, mean, low, high = mean_loss_curve(records)
        if len(steps) == 0:
            continue
        color, style = colors[i % 10], LINE_STYLES[(i // 10) % len(LINE_STYLES)]
        window = max(1, len(steps) // 20)
        ax.plot(steps, smooth(mean, window), style, label=f"{name} (n={len(records)})", color=color, linewidth=1.5)
        ax.fill_between(steps, smooth(low, window), smooth(high, window), color=color, alpha=0.12, linewidth=0)
    ax.set_yscale("log")
    ax.set_xscale("log")
    _plain_log_ticks(ax.xaxis)
    _plain_log_ticks(ax.yaxis)
    ax.set_xlabel("training step (log scale)")
    ax.set_ylabel("training loss (log scale)")
    ax.set_title(
        f"{model.upper()}: training loss per config\n"
        "geometric mean over seeds, ±1 std band, moving average over 5% of the logged points",
        fontsize=10,
    )
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3, frameon=False)
    return _save(fig, folder, f"{model}-loss")


def _plain_log_ticks(axis, values: list[float] | None = None) -> None:
    """Log axes with plain numbers (0.001, 64, 1000) rather than 6x10^1; at the data's own values when
    given, so every tick is a setting that was run."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullLocator

    axis.set_major_locator(FixedLocator(sorted(set(values))) if values else LogLocator(subs=(1, 2, 5)))
    axis.set_minor_locator(NullLocator())
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))


def place_labels(
    anchors: list[tuple[float, float]], widths: list[float], height: float, edges: tuple[float, float]
) -> list[tuple[float, float]]:
    """Lower-left corners (display units) for the labels of the points at `anchors`: beside the
    point, right or left (never across the left or right `edges`), at the nearest height where the label's box
    overlaps neither another label nor any point marker."""
    marker = height / 2
    boxes = [(x - marker, y - marker, x + marker, y + marker) for x, y in anchors]
    out: list[tuple[float, float]] = [(0.0, 0.0)] * len(anchors)

    def free(box: tuple[float, float, float, float]) -> bool:
        return (
            edges[0] <= box[0]
            and box[2] <= edges[1]
            and not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in boxes)
        )

    for i in sorted(range(len(anchors)), key=lambda i: -anchors[i][1]):
        x, y = anchors[i]
        candidates = [
            (x0, y - height / 2 + dy)
            for k in range(40)
            for dy in ((-1) ** k * ((k + 1) // 2) * height / 2,)
            for x0 in (x + marker + 2, x - marker - 2 - widths[i])
        ]
        x0, y0 = next((c for c in candidates if free((c[0], c[1], c[0] + widths[i], c[1] + height))), candidates[0])
        boxes.append((x0, y0, x0 + widths[i], y0 + height))
        out[i] = (x0, y0)
    return out


def _annotate_points(ax, points: list[tuple[float, float]], names: list[str], fontsize: int = 7) -> None:
    fig = ax.figure
    fig.canvas.draw()
    to_px = fig.dpi / 72
    anchors = [tuple(ax.transData.transform(p)) for p in points]
    widths = [0.55 * fontsize * len(n) * to_px for n in names]
    edges = (ax.transAxes.transform((0, 0))[0], ax.transAxes.transform((1, 0))[0])
    positions = place_labels(anchors, widths, 1.25 * fontsize * to_px, edges)
    height = 1.25 * fontsize * to_px
    for p, (ax_, ay), (lx, ly), name in zip(points, anchors, positions, names, strict=True):
        moved = abs(ly + height / 2 - ay) > height / 4
        ax.annotate(
            name,
            p,
            xytext=((lx - ax_) / to_px, (ly - ay) / to_px),
            textcoords="offset points",
            fontsize=fontsize,
            va="bottom",
            arrowprops={"arrowstyle": "-", "color": "0.6", "linewidth": 0.6} if moved else None,
        )


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points not beaten on both (lower time, higher accuracy), sorted by time."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best_acc = [], -np.inf
    for i in order:
        if points[i][1] > best_acc:
            front.append(i)
            best_acc = points[i][1]
    return front


def accuracy_vs_time(configs: list[dict[str, Any]], folder: Path) -> str:
    plt = _pyplot()
    usable = [c for c in configs if c["metrics"]["accuracy"] and c["metrics"]["train_s"]]
    models = [m for m in MODELS if any(c["model"] == m for c in usable)] or ["mlp"]
    fig, axes = plt.subplots(len(models), 1, figsize=(10, 5.5 * len(models)), squeeze=False)
    for ax, model in zip(axes[:, 0], models, strict=True):
        cs = sorted((c for c in usable if c["model"] == model), key=lambda c: c["name"])
        ax.set_title(f"{model.upper()}: test accuracy against training time")
        if not cs:
            ax.text(0.5, 0.5, "no runs with accuracy and timing", ha="center", transform=ax.transAxes)
            continue
        pts = [(c["metrics"]["train_s"]["mean"], c["metrics"]["accuracy"]["mean"]) for c in cs]
        ax.errorbar(
            [p[0] for p in pts],
            [p[1] for p in pts],
            yerr=[c["metrics"]["accuracy"]["std"] for c in cs],
            fmt="o",
            color="tab:blue",
            ecolor="tab:gray",
            capsize=3,
            label="config (mean ± std)",
        )
        front = pareto_front(pts)
        ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], "-", color="tab:red", label="Pareto front")
        ax.axhline(TARGETS[model], color="tab:green", linestyle="--", label=f"target {TARGETS[model]:g}%")
        ax.set_xscale("log")
        _plain_log_ticks(ax.xaxis)
        ax.margins(x=0.08, y=0.08)
        # Numbers on the points and a key beside the axes: full names collide in crowded corners.
        _annotate_points(ax, pts, [str(i + 1) for i in range(len(cs))], fontsize=8)
        key = "\n".join(f"{i + 1:>2}  {c['name']}" for i, c in enumerate(cs))
        ax.text(1.02, 1.0, key, transform=ax.transAxes, va="top", fontsize=7.5, family="monospace")
        ax.set_xlabel("training time, s (log scale, eval excluded)")
        ax.set_ylabel("test accuracy, %")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    return _save(fig, folder, "pareto")


def effects(
    model: str, configs: list[dict[str, Any]], axes_pairs: dict[str, list[tuple[dict, dict]]], folder: Path
) -> str | None:
    """One panel per setting: accuracy (mean ± std) for each value, along each one-factor pair."""
    panels = {axis: pairs for axis, pairs in axes_pairs.items() if pairs}
    if not panels:
        return None
    plt = _pyplot()
    ncols = min(3, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axs = plt.subplots(nrows, ncols, figsize=(5 * ncols, 4.2 * nrows), squeeze=False)
    for ax in axs.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, (axis, pairs) in zip(axs.flat, panels.items(), strict=False):
        _effect_panel(ax, model, axis, pairs)
    fig.tight_layout()
    return _save(fig, folder, f"{model}-effects")


def _axis_value(value: Any) -> Any:
    """A setting as a plot coordinate: lists (MLP hidden sizes, CNN channels) read as 512x512."""
    return "x".join(str(v) for v in value) if isinstance(value, list | tuple) else value


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _effect_panel(ax, model: str, axis: str, pairs: list[tuple[dict, dict]]) -> None:
    series: dict[str, dict[Any, dict]] = defaultdict(dict)
    for a, b in pairs:
        fixed = fixed_settings(a, axis)
        for c in (a, b):
            series[fixed][_axis_value(flat_config(c)[axis])] = c["metrics"]["accuracy"]
    values = [x for points in series.values() for x in points]
    numeric = all(_is_number(x) for x in values)
    categories = sorted({str(x) for x in values})
    for fixed, points in series.items():
        xs = sorted((x for x in points if points[x]), key=lambda x: x if numeric else str(x))
        ax.errorbar(
            xs if numeric else [categories.index(str(x)) for x in xs],
            [points[x]["mean"] for x in xs],
            yerr=[points[x]["std"] for x in xs],
            marker="o",
            linestyle="-" if numeric else "none",
            capsize=3,
            label=fixed,
        )
    if numeric and axis in ("lr", "batch_size", "steps"):
        ax.set_xscale("log")
        _plain_log_ticks(ax.xaxis, values)
    elif not numeric:
        ax.set_xticks(range(len(categories)), categories, rotation=20 if len(categories) > 3 else 0)
        ax.set_xlim(-0.5, len(categories) - 0.5)
    ax.set_xlabel(axis)
    ax.set_ylabel("test accuracy, % (mean ± std)")
    ax.set_title(f"{model.upper()}: effect of {axis}")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, title="other settings", title_fontsize=7)
