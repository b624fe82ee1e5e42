"""Terminal output: the training progress bar and the end-of-run summary table."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click


class ProgressBar:
    """A click progress bar on stderr with the latest loss; silent when stderr is not a terminal."""

    def __init__(self, steps: int, label: str):
        self.loss = float("nan")
        self._bar = click.progressbar(
            length=steps, label=label, file=sys.stderr, show_eta=True, show_pos=True, item_show_func=self._show
        )

    def _show(self, _item: Any) -> str:
        return f"loss {self.loss:.4f}"

    def __enter__(self) -> ProgressBar:
        self._bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._bar.__exit__(*exc)

    def update(self, step: int, loss: float) -> None:
        self.loss = loss
        self._bar.update(step - self._bar.pos, current_item=step)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def run_summary(record: dict[str, Any], path: Path | None) -> str:
    m, t, c = record["metrics"], record["timings"], record["config"]
    step = t["step_time_s"]
    step_text = (
        "-"
        if step is None
        else (
            f"{step['median'] * 1e3:.1f} ms median (p10 {step['p10'] * 1e3:.1f}, p90 {step['p90'] * 1e3:.1f}, "
            f"n={step['n']})"
        )
    )
    accuracy = "-" if m["accuracy"] is None else f"{m['accuracy']:.2f}%"
    reached = (
        "not reached"
        if m["steps_to_target"] is None
        else f"step {m['steps_to_target']}, {_seconds(m['time_to_target_s'])} of training"
        + (
            f", {_seconds(m['time_to_target_with_eval_s'])} with evaluation"
            if m.get("time_to_target_with_eval_s") is not None
            else ""
        )
    )
    rows = [
        ("status", record["status"]),
        ("model / device", f"{record['model']} on {record['device']['name']}"),
        ("config", f"lr={c['lr']} bs={c['batch_size']} steps={c['steps']} seed={c['seed']}"),
        ("test accuracy", f"{accuracy} (target {record['target']['accuracy']:g}%, {m['steps_done']} steps)"),
        ("target reached", reached),
        ("step time", step_text),
        ("samples/s", "-" if t["samples_per_s"] is None else f"{t['samples_per_s']:.0f}"),
        ("compile + warm-up", _seconds(t["compile_s"])),
        ("eval / data load", f"{_seconds(t['eval_s'])} / {_seconds(t['data_load_s'])}"),
        ("wall time", _seconds(t["wall_s"])),
        ("result", str(path) if path else "(not written)"),
    ]
    stability = t.get("stability") or {}
    if stability.get("busy"):
        rows.append(("WARNING", "the machine was busy; these timings are marked: " + "; ".join(stability["reasons"])))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _mean_std(stats: dict[str, Any] | None, scale: float = 1.0, digits: int = 2) -> str:
    if stats is None:
        return "-"
    return f"{stats['mean'] * scale:.{digits}f} ± {stats['std'] * scale:.{digits}f}"


def planned_table(planned: list) -> str:
    rows = [("run", "model", "lr", "bs", "steps", "seeds", "category", "description")]
    seen: dict[str, list] = {}
    for p in planned:
        seen.setdefault(p.config_key, []).append(p)
    for runs in seen.values():
        p = runs[0]
        rows.append(
            (
                p.name,
                p.spec.model,
                f"{p.spec.lr:g}",
                str(p.spec.batch_size),
                str(p.spec.steps),
                ",".join(str(r.spec.seed) for r in runs),
                p.category,
                p.description,
            )
        )
    rows.append((f"{len(planned)} runs", "", "", "", "", "", "", ""))
    return _table(rows)


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def summary_table(summary: dict[str, Any]) -> str:
    rows = [("config", "n", "accuracy %", "target met", "step ms", "time to target s", "wall s", "status")]
    for c in summary["configs"]:
        m = c["metrics"]
        rows.append(
            (
                c["key"],
                str(len(c["seeds"])),
                _mean_std(m["accuracy"]),
                f"{c['targets_met']}/{len(c['seeds'])}",
                _mean_std(m["step_time_s"], 1e3, 1),
                _mean_std(m["time_to_target_s"], 1, 1),
                _mean_std(m["wall_s"], 1, 1),
                ",".join(f"{k}={v}" for k, v in c["statuses"].items()),
            )
        )
    return _table(rows)


class SuiteProgress:
    """One bar across a suite's runs (ETA from finished runs), showing the current run and loss."""

    def __init__(self, planned: list):
        self.total = len(planned)
        self.current = ""
        self.loss = float("nan")
        self._bar = click.progressbar(
            length=self.total,
            label="suite",
            file=sys.stderr,
            show_eta=True,
            show_pos=True,
            item_show_func=lambda _: f"{self.current} loss {self.loss:.3f}",
        )
        self._started = 0

    def __enter__(self) -> SuiteProgress:
        self._bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._bar.__exit__(*exc)

    def start_run(self, planned, reused: bool) -> None:
        if self._started:
            self._bar.update(1)
        self._started += 1
        self.current = planned.key + (" (reused)" if reused else "")
        self._bar.render_progress()

    def step(self, step: int, loss: float) -> None:
        self.loss = loss
        if step % 10 == 0:
            self._bar.render_progress()


class terminate_as_interrupt:
    """Within the block, SIGTERM raises KeyboardInterrupt, so finished results are kept as on Ctrl-C."""

    def __enter__(self) -> terminate_as_interrupt:
        import signal

        def handler(signum, frame):
            raise KeyboardInterrupt

        self._previous = signal.signal(signal.SIGTERM, handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        import signal

        signal.signal(signal.SIGTERM, self._previous)
