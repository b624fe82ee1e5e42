"""Suite summaries: per-config statistics over seeds, built from run records (so merge == unsharded)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from harness import results, schema, stats
from harness.errors import HarnessError

# summary metric -> how to read it from a run record
METRICS: dict[str, Any] = {
    "accuracy": lambda r: r["metrics"]["accuracy"],
    "final_loss": lambda r: r["metrics"]["final_loss"],
    "steps_to_target": lambda r: r["metrics"]["steps_to_target"],
    "time_to_target_s": lambda r: r["metrics"]["time_to_target_s"],
    "step_time_s": lambda r: (r["timings"]["step_time_s"] or {}).get("median"),
    # the fastest tenth of the steps: what the machine can do, least moved by other processes' bursts
    "step_time_p10_s": lambda r: (r["timings"]["step_time_s"] or {}).get("p10"),
    "samples_per_s": lambda r: r["timings"]["samples_per_s"],
    "compile_s": lambda r: r["timings"]["compile_s"],
    "train_s": lambda r: r["timings"]["train_s"],
    "eval_s": lambda r: r["timings"]["eval_s"],
    "wall_s": lambda r: r["timings"]["wall_s"],
}
BUDGET_METRICS = {"step_time_s", "wall_s", "time_to_target_s", "compile_s"}


def config_key(record: dict[str, Any]) -> str:
    return f"{record['suite']['run']}@{record['device']['name']}"


def _config_without_seed(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record["config"].items() if k != "seed"}


def _budget_violations(records: list[dict[str, Any]], budget: dict[str, float]) -> list[str]:
    out = []
    for metric, limit in sorted(budget.items()):
        for r in records:
            value = METRICS[metric](r)
            if value is None or value > limit:
                shown = "not reached" if value is None else f"{value:.3g} s"
                out.append(f"seed {r['config']['seed']}: {metric} {shown} > budget {limit:g} s")
    return out


def summarize_config(records: list[dict[str, Any]]) -> dict[str, Any]:
    records = sorted(records, key=lambda r: r["config"]["seed"])
    first = records[0]
    budget = first["suite"]["budget"]
    statuses: dict[str, int] = defaultdict(int)
    for r in records:
        statuses[r["status"]] += 1
    ok = [r for r in records if r["status"] != "failed"]
    return {
        "key": config_key(first),
        "name": first["suite"]["run"],
        "device": first["device"]["name"],
        "model": first["model"],
        "category": first["suite"]["category"],
        "description": first["suite"]["description"],
        "config": _config_without_seed(first),
        "target": first["target"]["accuracy"],
        "seeds": [r["config"]["seed"] for r in records],
        "statuses": dict(sorted(statuses.items())),
        "targets_met": sum(r["target"]["met"] for r in records),
        "metrics": {name: stats.describe([get(r) for r in ok]) for name, get in METRICS.items()},
        "assert_target": first["suite"]["assert_target"],
        "budget": dict(budget),
        "budget_violations": _budget_violations(ok, budget),
        "failures": [
            {"seed": r["config"]["seed"], "error": r.get("error", "")} for r in records if r["status"] == "failed"
        ],
        "runs": sorted(r["run_id"] for r in records),
    }


def _machines(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen = {}
    for r in records:
        env = r["environment"]
        machine = {
            "cpu": env["cpu"]["model"],
            "gpu": env["gpu"],
            "device": r["device"]["name"],
            "tinygrad": env["packages"]["tinygrad"],
            "tinygrad_env": env["tinygrad_env"],
        }
        seen[results.dumps(machine)] = machine
    return [seen[k] for k in sorted(seen)]


def build(
    suite: str, records: list[dict[str, Any]], expected: int | None = None, check_suite: bool = True
) -> dict[str, Any]:
    """The summary document of a suite from its run records (order-independent).

    `check_suite` refuses records of other suites; a suite run turns it off because a suite that
    includes another (explore includes mlp-explore) may reuse the included suite's results.
    """
    if not records:
        raise HarnessError(f"suite {suite!r}: no run results to summarize")
    others = sorted({r["suite"]["name"] for r in records if r.get("suite", {}).get("name") != suite})
    if others and check_suite:
        raise HarnessError(f"results of other suites mixed in: {', '.join(others)}")
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[config_key(r)].append(r)
    configs = [summarize_config(groups[k]) for k in sorted(groups)]
    return {
        "schema_version": schema.SCHEMA_VERSION,
        "kind": "summary",
        "suite": suite,
        "created_at": results.utc_now(),
        "machines": _machines(records),
        "n_runs": len(records),
        "n_expected": expected or len(records),
        "n_failed": sum(r["status"] == "failed" for r in records),
        "configs": configs,
    }


def problems(summary: dict[str, Any]) -> list[str]:
    """Why a suite did not pass: failed runs, missed targets (where asserted), budgets exceeded."""
    out = []
    for c in summary["configs"]:
        n = len(c["seeds"])
        if c["failures"]:
            seed, error = c["failures"][0]["seed"], c["failures"][0]["error"]
            out.append(f"{c['key']}: {len(c['failures'])} of {n} run(s) failed (seed {seed}: {error})")
        if c["assert_target"] and c["targets_met"] < n:
            out.append(f"{c['key']}: target {c['target']:g}% met by {c['targets_met']} of {n} seed(s)")
        out += [f"{c['key']}: {v}" for v in c["budget_violations"]]
    if summary["n_runs"] < summary["n_expected"]:
        out.append(f"only {summary['n_runs']} of {summary['n_expected']} runs have results")
    return out


def load_runs(paths: list[Path]) -> tuple[list[dict[str, Any]], list[str]]:
    """Run records from files and folders (recursively); other harness JSON and unrelated files are skipped."""
    records, skipped = [], []
    for f in results.json_files(paths):
        try:
            doc = results.upgrade(results.read_json(f), str(f))
        except HarnessError as e:
            skipped.append(f"{f}: {e.message.removeprefix(f'{f}: ')}")
            continue
        if doc.get("kind") != "run":
            skipped.append(f"{f}: a {doc.get('kind')} file, not a run result")
            continue
        schema.check(doc, "run", str(f))
        records.append(doc)
    return records, skipped


def equal_ignoring_time_of_writing(a: dict[str, Any], b: dict[str, Any]) -> bool:
    strip = {"created_at"}
    return {k: v for k, v in a.items() if k not in strip} == {k: v for k, v in b.items() if k not in strip}
