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
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
