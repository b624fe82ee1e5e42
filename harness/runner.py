"""Run a suite: planned runs one after another, each result written as it ends; resumable."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import atomic, bench, devices, isolate, results, suites, summary
from harness import data as mnist_data
from harness.errors import HarnessError
from harness.suites import PlannedRun


def summary_path(out_dir: Path, suite_name: str) -> Path:
    return out_dir / f"{suite_name}.summary.json"


@dataclass
class SuiteOutcome:
    summary: dict[str, Any]
    summary_path: Path
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return summary.problems(self.summary)


def existing_result(path: Path, planned: PlannedRun) -> dict[str, Any] | None:
    """The valid result already written for this planned run, if any (for --resume)."""
    if not path.exists():
        return None
    try:
        record = results.load(path, "run")
    except HarnessError:
        return None
    same = (
        record.get("suite", {}).get("run") == planned.name
        and record["device"]["name"] == planned.device
        and record["config"] == planned.spec.to_json()
    )
    return record if same else None


def resolve_devices(names: list[str]) -> list[str]:
    """Canonical device names; `all` means every usable backend."""
    if not names:
        return [devices.resolve(None).name]
    if "all" in [n.lower() for n in names]:
        usable = [d.name for d in devices.usable()]
        if not usable:
            raise HarnessError("no usable tinygrad device")
        return usable
    return list(dict.fromkeys(devices.resolve(n).name for n in names))


def run_suite(
    suite_name: str,
    planned: list[PlannedRun],
    out_dir: Path,
    *,
    resume: bool = False,
    data_dir: str | None = None,
    before_run: Callable[[PlannedRun, bool], None] | None = None,
    progress: Callable[[int, float], None] | None = None,
    log: Callable[[str], None] | None = None,
    isolated: bool = False,
) -> SuiteOutcome:
    """Run (or, with resume, skip already finished) planned runs, then write the summary. `isolated`: each
    run in a fresh process (no step progress then), so no run inherits state from the runs before it."""
    if not planned:
        raise HarnessError("nothing to run: the suite (or this shard of it) is empty")
    results.check_writable(out_dir)
    atomic.clean_stale_temp_files(out_dir)
    mnist = mnist_data.load(data_dir, log=log)
    outcome_records, ran, skipped = [], [], []
    for p in planned:
        path = out_dir / p.filename
        done = existing_result(path, p) if resume else None
        if before_run:
            before_run(p, done is not None)
        if done is not None:
            outcome_records.append(done)
            skipped.append(p.key)
            continue
        request = bench.RunRequest(
            p.spec,
            device=p.device,
            out_dir=out_dir,
            target=p.target,
            suite=p.suite_info(),
            filename=p.filename,
            record_failures=True,
        )
        if isolated:
            record = isolate.run(request, data_dir)
        else:
            record, _ = bench.run(request, mnist=mnist, progress=progress, log=log)
        outcome_records.append(record)
        ran.append(p.key)
    doc, path = write_summary(suite_name, planned, outcome_records, out_dir)
    return SuiteOutcome(doc, path, ran, skipped)


def _same_config(record: dict[str, Any]) -> tuple[str, str, str]:
    config = {k: v for k, v in record["config"].items() if k != "seed"}
    return record["suite"]["run"], record["device"]["name"], results.dumps(config)


def write_summary(
    suite_name: str, planned: list[PlannedRun], records: list[dict[str, Any]], out_dir: Path
) -> tuple[dict[str, Any], Path]:
    """Summarize this run's records plus other seeds of the same configs already in the folder
    (a concurrent or earlier run), under a lock so concurrent runs do not clobber the summary."""
    with atomic.folder_lock(out_dir):
        found, _ = summary.load_runs([out_dir])
        wanted = {_same_config(r) for r in records}
        covered = _covered(suite_name)
        mine = {r["run_id"] for r in records}
        extra = [
            r
            for r in found
            if r.get("suite", {}).get("name") in covered and r["run_id"] not in mine and _same_config(r) in wanted
        ]
        keys = {p.key for p in planned} | {f"{summary.config_key(r)}#seed{r['config']['seed']}" for r in extra}
        by_key = {f"{summary.config_key(r)}#seed{r['config']['seed']}": r for r in [*extra, *records]}
        doc = summary.build(suite_name, list(by_key.values()), expected=len(keys), check_suite=False)
        return doc, results.write_validated(summary_path(out_dir, suite_name), doc, "summary")


def _covered(suite_name: str) -> set[str]:
    """Suite names whose results count for `suite_name` (itself and what it includes)."""
    try:
        return suites.covered(suite_name)
    except HarnessError:  # not a shipped suite nor a path here: only its own results
        return {suite_name}


def merge(paths: list[Path], out: Path | None) -> tuple[dict[str, Any], Path | None, list[str]]:
    """One summary from the run results in shard folders; returns (summary, path, skipped files)."""
    records, skipped = summary.load_runs(paths)
    if not records:
        raise HarnessError("no run results found in " + ", ".join(map(str, paths)))
    names = sorted({r.get("suite", {}).get("name", "") for r in records})
    suite_name = next((n for n in names if n and set(names) <= _covered(n)), None)
    if names == [""]:
        raise HarnessError(
            "these results come from single runs (`mnist-bench mlp`/`cnn`), not a suite; "
            "summaries and comparisons need `mnist-bench suite run` results"
        )
    if suite_name is None:
        raise HarnessError(
            f"results come from {len(names)} suites ({', '.join(s or '(none)' for s in names)}) and none "
            "includes the others; merge one suite at a time"
        )
    keys = [f"{summary.config_key(r)}#seed{r['config']['seed']}" for r in records]
    if dups := sorted({k for k in keys if keys.count(k) > 1}):
        raise HarnessError(f"the same run appears more than once: {', '.join(dups[:5])}")
    doc = summary.build(suite_name, records, check_suite=False)
    path = results.write_validated(out, doc, "summary") if out else None
    return doc, path, skipped
