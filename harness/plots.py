"""Report figures (PNG + SVG) with matplotlib, an optional extra: `pip install mnist-bench[plots]`."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from harness.train import TARGETS


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
    folder.mkdir(parents=True, exist_ok=True)
    fig.savefig(folder / f"{stem}.png", dpi=130, bbox_inches="tight")
    fig.savefig(folder / f"{stem}.svg", bbox_inches="tight")
    _pyplot().close(fig)
    return f"{stem}.png"


def mean_loss_curve(records: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps, mean and std of the loss over seeds, on the steps every seed logged."""
    curves = [dict((s, v) for s, v in r["metrics"]["loss_curve"] if v is not None) for r in records]
    steps = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
    values = np.array([[c[s] for s in steps] for c in curves])
    return np.array(steps), values.mean(axis=0), values.std(axis=0)


def loss_curves(model: str, records_by_config: dict[str, list[dict[str, Any]]], folder: Path) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 5.5))
    cmap = plt.get_cmap("tab20")
    for i, (name, records) in enumerate(sorted(records_by_config.items())):
        steps, mean, std = mean_loss_curve(records)
        if len(steps) == 0:
            continue
        ax.plot(steps, mean, label=f"{name} (n={len(records)})", color=cmap(i % 20), linewidth=1.4)
        ax.fill_between(steps, mean - std, mean + std, color=cmap(i % 20), alpha=0.15)
    ax.set_yscale("log")
    ax.set_xscale("log")
    ax.set_xlabel("training step (log scale)")
    ax.set_ylabel("training loss (log scale), mean ± std over seeds")
    ax.set_title(f"{model.upper()}: training loss per config")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3, frameon=False)
    return _save(fig, folder, f"{model}-loss")


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
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    for ax, model in zip(axes, ("mlp", "cnn"), strict=True):
        cs = [c for c in usable if c["model"] == model]
        ax.set_title(f"{model.upper()}: test accuracy against training time")
        if not cs:
            ax.text(0.5, 0.5, "no runs", ha="center", transform=ax.transAxes)
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
        for i in front:
            ax.annotate(cs[i]["name"], pts[i], textcoords="offset points", xytext=(4, -10), fontsize=7)
        ax.axhline(TARGETS[model], color="tab:green", linestyle="--", label=f"target {TARGETS[model]:g}%")
        ax.set_xscale("log")
        ax.set_xlabel("training time, s (log scale, eval excluded)")
        ax.set_ylabel("test accuracy, %")
        ax.grid(True, which="both", alpha=0.3)
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
    fig, axs = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4.2), squeeze=False)
    for ax, (axis, pairs) in zip(axs[0], panels.items(), strict=True):
        series: dict[str, dict[Any, dict]] = defaultdict(dict)
        from harness.report import flat_config

        for a, b in pairs:
            fixed = ", ".join(
                f"{k}={v}" for k, v in flat_config(a).items() if k in ("lr", "batch_size", "steps") and k != axis
            )
            for c in (a, b):
                series[fixed][flat_config(c)[axis]] = c["metrics"]["accuracy"]
        for fixed, points in series.items():
            xs = sorted(x for x in points if points[x])
            labels = [str(x) for x in xs]
            ax.errorbar(
                range(len(xs)) if axis == "model.activation" else xs,
                [points[x]["mean"] for x in xs],
                yerr=[points[x]["std"] for x in xs],
                marker="o",
                capsize=3,
                label=fixed,
            )
            if axis == "model.activation":
                ax.set_xticks(range(len(xs)), labels)
        if axis in ("lr", "batch_size", "steps"):
            ax.set_xscale("log")
        ax.set_xlabel(axis)
        ax.set_ylabel("test accuracy, % (mean ± std)")
        ax.set_title(f"{model.upper()}: effect of {axis}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, title="other settings", title_fontsize=7)
    fig.tight_layout()
    return _save(fig, folder, f"{model}-effects")
