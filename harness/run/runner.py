"""Run a suite: planned runs one after another, each result written as it ends; resumable."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import documents
from harness.base import atomic
from harness.base.errors import HarnessError
from harness.documents import results, summary
from harness.documents.suites import PlannedRun
from harness.run import bench, isolate
from harness.tg import data as mnist_data
from harness.tg import devices, kernel_search


@dataclass
class SuitePlan:
    """A suite resolved for this machine: its document, the runs to make, their devices, the output folder."""

    suite: dict[str, Any]
    runs: list[PlannedRun]
    devices: list[str]
    out_dir: Path

    @property
    def name(self) -> str:
        return self.suite["name"]


@dataclass
class SuiteOutcome:
    summary: dict[str, Any]
    summary_path: Path
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return summary.problems(self.summary)


def existing_result(path: Path, planned: PlannedRun, beam: int | None = None) -> dict[str, Any] | None:
    """The valid result already written for this planned run with the same BEAM width, if any (for --resume)."""
    if not path.exists():
        return None
    try:
        record = documents.load(path, "run")
    except HarnessError:
        return None
    same = (
        record.get("suite", {}).get("run") == planned.name
        and record["device"]["name"] == planned.device
        and record["config"] == planned.spec.to_json()
        and kernel_search.record_beam(record) == (kernel_search.env_beam() if beam is None else beam)
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


def plan(
    name: str,
    *,
    devices: list[str] | tuple[str, ...] = (),
    repeat: int | None = None,
    seeds: list[int] | None = None,
    only: list[str] | tuple[str, ...] = (),
    shard: tuple[int, int] | None = None,
    out_dir: Path | None = None,
) -> SuitePlan:
    """Suite NAME (shipped or a path) expanded over seeds and devices, filtered by `only` globs, cut to
    shard (i, n); `out_dir` defaults to <results.out_root()>/<suite> ($MNIST_BENCH_OUT or results/runs)."""
    from harness.documents import suites

    doc = suites.load(name)
    override = suites.seed_override(repeat, seeds)
    device_list = resolve_devices(list(devices))
    planned = suites.select(suites.expand(doc, device_list, override), list(only))
    if shard is not None:
        planned = suites.shard(planned, *shard)
    return SuitePlan(doc, planned, device_list, out_dir or results.out_root() / doc["name"])


def run_plan(
    suite_plan: SuitePlan,
    *,
    resume: bool = False,
    isolated: bool | None = None,
    data_dir: str | None = None,
    before_run: Callable[[PlannedRun, bool], None] | None = None,
    after_run: Callable[[PlannedRun, dict[str, Any]], None] | None = None,
    progress: Callable[[int, float], None] | None = None,
    log: Callable[[str], None] | None = None,
    beam: int | None = None,
) -> SuiteOutcome:
    """run_suite for a plan; `isolated` None isolates when a device is not the CPU (isolate.wanted)."""
    return run_suite(
        suite_plan.name,
        suite_plan.runs,
        suite_plan.out_dir,
        resume=resume,
        data_dir=data_dir,
        before_run=before_run,
        after_run=after_run,
        progress=progress,
        log=log,
        isolated=isolate.wanted(suite_plan.devices, isolated),
        beam=beam,
    )


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
    after_run: Callable[[PlannedRun, dict[str, Any]], None] | None = None,
    beam: int | None = None,
) -> SuiteOutcome:
    """Run (or, with resume, skip already finished) planned runs, then write the summary. `isolated`: each
    run in a fresh process (no step progress then), so no run inherits state from the runs before it.
    `beam`: every run's BEAM width (None: the BEAM variable's)."""
    if not planned:
        raise HarnessError("nothing to run: the suite (or this shard of it) is empty")
    results.check_writable(out_dir)
    atomic.clean_stale_temp_files(out_dir)
    mnist = mnist_data.load(data_dir, log=log)
    outcome_records, ran, skipped = [], [], []
    for p in planned:
        path = out_dir / p.filename
        done = existing_result(path, p, beam) if resume else None
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
            beam=beam,
        )
        if isolated:
            record = isolate.run(request, data_dir)
        else:
            record, _ = bench.run(request, mnist=mnist, progress=progress, log=log)
        if after_run:
            after_run(p, record)
        outcome_records.append(record)
        ran.append(p.key)
    doc, path = summary.write_for_suite(suite_name, {p.key for p in planned}, outcome_records, out_dir)
    return SuiteOutcome(doc, path, ran, skipped)
