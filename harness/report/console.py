"""Terminal output: progress bars, and tables rendered as text, Markdown or JSON (`--format`)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from harness import documents
from harness.base.metrics import METRICS, format_stat, header


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


# The words a reader scans a text output for, and their colours; a run summary's status value too.
COLOURS = {"PASS": "green", "ok": "green", "WARNING": "yellow"} | dict.fromkeys(
    ("FAIL", "REGRESSION", "INVALID", "INCOMPLETE", "target_missed", "diverged", "failed"), "red"
)
_VERDICT_WORD = re.compile(r"\b(PASS|FAIL|REGRESSION|INVALID|INCOMPLETE|WARNING)\b")
_RUN_STATUS = re.compile(r"^(status\s+)(ok|target_missed|diverged|failed)$", re.MULTILINE)


def coloured(text: str) -> str:
    """`text` with its verdict words in colour (ANSI). click.echo drops the colour where the output is not a
    terminal (a pipe, a file, CI), and NO_COLOR (no-color.org: any non-empty value) turns it off."""
    if os.environ.get("NO_COLOR"):
        return text
    import click

    def paint(word: str) -> str:
        return click.style(word, fg=COLOURS[word], bold=True)

    text = _RUN_STATUS.sub(lambda m: m[1] + paint(m[2]), text)
    return _VERDICT_WORD.sub(lambda m: paint(m[1]), text)


def to_json(doc: Any) -> str:
    return documents.dumps(doc).rstrip("\n")


def run_summary(record: dict[str, Any], path: Path | None, fmt: str = "text") -> str:
    """A run's outcome as `key  value` lines (text) or a two-column table (markdown)."""
    rows = _run_rows(record, path)
    if fmt == "markdown":
        return documents.table(("", record["run_id"]), rows, "markdown")
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def status_text(record: dict[str, Any]) -> str:
    """A run's status with its reason: a missed target says by how much and how to try without failing."""
    status, accuracy, target = record["status"], record["metrics"]["accuracy"], record["target"]["accuracy"]
    if status == "target_missed" and accuracy is not None:
        steps = record["config"]["steps"]
        return (
            f"target_missed: accuracy {accuracy:.2f}% < target {target:g}% after {steps} steps "
            "(a short run is expected to miss; --no-assert-target exits 0, --target sets another)"
        )
    if status == "failed" and record.get("error"):
        return f"failed: {record['error']}"
    if status == "diverged":
        return f"diverged: the loss stopped being finite at step {record['metrics']['steps_done']}"
    return status


def _run_rows(record: dict[str, Any], path: Path | None) -> list[tuple[str, str]]:
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
        ("status", status_text(record)),
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
    if (ks := record["environment"].get("kernel_search")) and ks["beam"]:
        rows.insert(-1, ("kernel search", kernel_search_text(ks)))
    stability = t.get("stability") or {}
    if stability.get("busy"):
        rows.append(("WARNING", "the machine was busy; these timings are marked: " + "; ".join(stability["reasons"])))
    return rows


def estimate_text(estimate: dict[str, Any]) -> str:
    """A suite's `suites.estimate` in words: `about 6m10s (CPU on a 2-core Intel(R) Xeon(R) Processor; ...)`."""
    from harness.run.progress import rough

    if estimate["seconds"] is None:
        return "no estimate (no committed run of these models on these devices)"
    missing = f"; {len(estimate['unknown'])} config(s) not counted, never measured" if estimate["unknown"] else ""
    return (
        f"about {rough(estimate['seconds'])} ({', '.join(estimate['machines'])}: estimated from the runs "
        f"committed under results/, for that kind of machine{missing})"
    )


def estimate_short(estimate: dict[str, Any]) -> str:
    """`~6m10s`, or `?` where no committed run measured the suite's models on the device."""
    from harness.run.progress import rough

    return "?" if estimate["seconds"] is None else f"~{rough(estimate['seconds'])}"


def estimate_note(rows: list[dict[str, Any]]) -> str:
    """Where `suite list`'s times come from."""
    machines = sorted({m for r in rows for m in r["estimate"]["machines"]})
    return (
        f"time: estimated for {', '.join(machines) or 'no machine'}, from the runs committed under results/ "
        "(another machine or a cold compile cache differs; `suite show NAME` per device)"
    )


def planned_table(planned: list, fmt: str = "text") -> str:
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
    return documents.table(rows[0], rows[1:], fmt)


def planned_json(suite: dict[str, Any], planned: list) -> dict[str, Any]:
    """`suite show --format json`: the suite's name and description, then every run it expands to."""
    runs = [
        {"name": p.name, "category": p.category, "description": p.description, "target": p.target, **p.spec.to_json()}
        for p in planned
    ]
    return {"name": suite["name"], "description": suite["description"], "runs": runs}


TABLE = tuple(name for name, m in METRICS.items() if m.table)  # accuracy first: the registry's order


def summary_table(summary: dict[str, Any], fmt: str = "text") -> str:
    """One row per config: seeds, targets met, status counts, and mean ± std of TABLE
    (names, units and scales from the metric registry); `fmt` text or markdown."""

    head = ("config", "n", header("accuracy"), "target met", *map(header, TABLE[1:]), "status")
    rows = [head]
    for c in summary["configs"]:
        m = c["metrics"]
        cells = [format_stat(m[name], name, n=False, unit=False) for name in TABLE]
        rows.append(
            (
                c["key"],
                str(len(c["seeds"])),
                cells[0],
                f"{c['targets_met']}/{len(c['seeds'])}",
                *cells[1:],
                ",".join(f"{k}={v}" for k, v in c["statuses"].items()),
            )
        )
    return documents.table(rows[0], rows[1:], fmt)


def _baseline_view(fmt: str):
    def view(doc: dict[str, Any]) -> str:
        if fmt == "markdown":  # a paragraph, then a blank line before the table
            head = f"**{doc['name']}**: suite `{doc['suite']}` on `{doc['device_key']}`, saved {doc['saved_at']}\n"
        else:
            head = f"{doc['name']}: suite {doc['suite']} on {doc['device_key']}, saved {doc['saved_at']}"
        return f"{head}\n{summary_table(doc['summary'], fmt)}"

    return view


documents.views("summary", text=summary_table, markdown=lambda doc: summary_table(doc, "markdown"))
documents.views("baseline", text=_baseline_view("text"), markdown=_baseline_view("markdown"))


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


def kernel_search_text(ks: dict[str, Any]) -> str:
    """A record's `environment.kernel_search` in words: `BEAM=1: 3 kernel(s) searched in 40.2 s, 35 cached`."""
    if ks["searched"] is None:
        return f"BEAM={ks['beam']}: searches not counted (tinygrad's search module changed)"
    return (
        f"BEAM={ks['beam']}: {ks['searched']} kernel(s) searched in {ks['search_s']:.1f} s, "
        f"{ks['cached']} from the search cache"
    )


def warmed_line(w: Any) -> str:
    """One line per warmed model and device (a `warmup.Warmed`): first-steps time, cache state, BEAM's work."""
    cache = "warm" if w.cache_was_warm else "cold"
    line = f"{w.model} on {w.device}: first steps {w.compile_s:.1f} s (compile cache was {cache})"
    if w.kernel_search["beam"]:
        line += "; " + kernel_search_text(w.kernel_search)
    return f"{line}; {w.wall_s:.1f} s in all; cache {w.cache_path}"
