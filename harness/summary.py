"""The summary document's owner: per-config statistics over seeds built from run records (so a merge
of shards equals an unsharded run), the metric registry every reader uses, run keys, and `problems()`,
the one judgement of whether a summary passes."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import atomic, inputs, kernel_search, results, schema, stats, suites
from harness import env as env_mod
from harness.errors import HarnessError
from harness.spec import run_key


@dataclass(frozen=True)
class Metric:
    """One summary metric. Adding one is an entry in METRICS plus its property in
    schemas/summary.schema.json; compare, console, report and the schema tests read it from here."""

    name: str  # key under a summary config's `metrics`
    read: Callable[[dict[str, Any]], float | None]  # its value in one run record (None: not measured)
    alias: str  # its name in a compare rule: `step_time` in `step_time:+10%`
    label: str  # words for a table header
    unit: str = ""  # shown after the value, once scaled
    scale: float = 1.0  # shown value = stored value x scale
    worse: int = 1  # +1: a higher value is worse; -1: a lower one
    rule_kinds: tuple[str, ...] = ("%",)  # the kinds of compare rule it accepts (compare.RULE_KINDS)
    default_rule: str | None = None  # compare checks `alias:default_rule` unless told otherwise
    decimals: int | None = None  # fixed decimals when shown; None: 3 significant digits
    exact: bool = False  # a deterministic count: a % rule compares it exactly, without a noise test
    positive: bool = True  # never below zero: its 95% interval is computed on the logs (stats.describe)
    clock: bool = False  # measured by a clock: comparable only between runs on the same chip (compare)

    def values(self, records: list[dict[str, Any]]) -> list[float | None]:
        return [self.read(r) for r in records]


def _timing(name: str) -> Callable[[dict[str, Any]], float | None]:
    return lambda r: r["timings"][name]


def _step_time(field: str) -> Callable[[dict[str, Any]], float | None]:
    return lambda r: (r["timings"]["step_time_s"] or {}).get(field)


def _metric(name: str) -> Callable[[dict[str, Any]], float | None]:
    return lambda r: r["metrics"][name]


def _cost(*path: str) -> Callable[[dict[str, Any]], float | None]:
    """A value in the record's `cost` (tinygrad's own counts of the captured steps); None where absent."""

    def read(r: dict[str, Any]) -> float | None:
        node: Any = r.get("cost")
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        return node

    return read


EXACT: dict[str, Any] = {"exact": True, "default_rule": "+0%"}  # gated by default: any rise fails

_REGISTRY = (
    Metric(
        "accuracy",
        _metric("accuracy"),
        "accuracy",
        "accuracy",
        "%",
        worse=-1,
        rule_kinds=("pp", "%"),
        default_rule="-0.3pp",
        decimals=2,
        positive=False,
    ),
    Metric("final_loss", _metric("final_loss"), "final_loss", "final loss"),
    Metric("steps_to_target", _metric("steps_to_target"), "steps_to_target", "steps to target", " steps"),
    # training only (steps, their compile included); the MLPerf reading adds every evaluation up to the target
    Metric(
        "time_to_target_s", _metric("time_to_target_s"), "time_to_target", "time to target (training)", " s", clock=True
    ),
    Metric(
        "time_to_target_with_eval_s",
        lambda r: r["metrics"].get("time_to_target_with_eval_s"),
        "time_to_target_with_eval",
        "time to target (with eval, MLPerf)",
        " s",
        clock=True,
    ),
    Metric("step_time_s", _step_time("median"), "step_time", "step time", " ms", 1e3, clock=True),
    # the fastest tenth of the steps: what the machine can do, least moved by other processes' bursts
    Metric(
        "step_time_p10_s",
        _step_time("p10"),
        "step_time_p10",
        "step time p10",
        " ms",
        1e3,
        default_rule="+10%",
        clock=True,
    ),
    Metric("samples_per_s", _timing("samples_per_s"), "samples_per_s", "samples/s", " samples/s", worse=-1, clock=True),
    Metric("compile_s", _timing("compile_s"), "compile_time", "compile time", " s", clock=True),
    Metric("train_s", _timing("train_s"), "train_time", "train time", " s", clock=True),
    Metric("eval_s", _timing("eval_s"), "eval_time", "eval time", " s", clock=True),
    Metric("wall_s", _timing("wall_s"), "wall_time", "wall time", " s", clock=True),
    # what tinygrad says the jitted step does: the same on every seed, process and machine of one key
    Metric("kernels_per_step", _cost("train_step", "kernels"), "kernels", "kernels/step", **EXACT),
    Metric("flops_per_step", _cost("train_step", "flops"), "flops", "FLOP/step", " GFLOP", 1e-9, **EXACT),
    Metric("bytes_per_step", _cost("train_step", "bytes"), "bytes", "bytes/step", " MB", 1e-6, **EXACT),
    Metric("eval_flops", _cost("eval_pass", "flops"), "eval_flops", "FLOP/eval", " GFLOP", 1e-9, **EXACT),
    Metric("buffer_bytes", _cost("memory", "jit_buffers_bytes"), "buffer_bytes", "buffers", " MB", 1e-6, exact=True),
    Metric("intensity", _cost("train_step", "intensity"), "intensity", "FLOP/byte", exact=True, worse=-1),
    Metric(
        "gflops_per_s", _cost("derived", "gflop_per_s"), "gflops_per_s", "achieved", " GFLOP/s", worse=-1, clock=True
    ),
    Metric("gb_per_s", _cost("derived", "gb_per_s"), "gb_per_s", "achieved", " GB/s", worse=-1, clock=True),
)
METRICS: dict[str, Metric] = {m.name: m for m in _REGISTRY}
BY_ALIAS: dict[str, Metric] = {m.alias: m for m in _REGISTRY}


def metric_of(name: str) -> Metric:
    """The registry's entry for a metric named in a document; a name this version does not know (a newer
    harness's document) gets a plain stand-in that shows the values as stored, under the name itself."""
    return METRICS.get(name) or Metric(name, lambda r: None, name, name)


def format_stat(s: dict[str, Any] | None, metric: str, *, n: bool = True, unit: bool = True, missing: str = "-") -> str:
    """The one `mean ± std unit (n=N)` of every table and report, in the metric's display scale and
    decimals: plain numbers, never 1.43e+03. One seed has no spread, so it shows `mean unit (n=1)`.
    `unit` False leaves the unit to a column header; `n` False drops the count."""
    if s is None:
        return missing
    m = metric_of(metric)
    if m.decimals is not None:
        mean, std = f"{s['mean'] * m.scale:.{m.decimals}f}", f"{s['std'] * m.scale:.{m.decimals}f}"
    else:
        mean, std = _number(s["mean"] * m.scale, 3), _number(s["std"] * m.scale, 2)
    shown_unit = m.unit if unit else ""
    count = f" (n={s['n']})" if n or (n is None and s["n"] == 1) else ""
    if s["n"] == 1:
        return f"{mean}{shown_unit}{count}"
    return f"{mean} ± {std}{shown_unit}{count}"


def header(metric: str) -> str:
    """A table column's title: the metric's label and unit (`step time ms`)."""
    m = metric_of(metric)
    return f"{m.label} {m.unit.strip()}".rstrip()


def _number(x: float, digits: int) -> str:
    """`digits` significant digits without scientific notation: 1431 ms, not 1.43e+03."""
    return f"{x:.0f}" if abs(x) >= 10 ** (digits - 1) else f"{x:.{digits}g}"


# --- run keys ---------------------------------------------------------------------------------------


def config_key(record: dict[str, Any]) -> str:
    """The record's config identity, `name@device` (the suite's run name, not the seed)."""
    return run_key(record["suite"]["run"], record["device"]["name"])


def record_key(record: dict[str, Any]) -> str:
    """The record's run identity, `name@device#seedN`, as `PlannedRun.key` spells it."""
    return run_key(record["suite"]["run"], record["device"]["name"], record["config"]["seed"])


# --- building ---------------------------------------------------------------------------------------


def _config_without_seed(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record["config"].items() if k != "seed"}


def _budget_violations(records: list[dict[str, Any]], budget: dict[str, float]) -> list[str]:
    out = []
    for metric, limit in sorted(budget.items()):
        for r in records:
            value = METRICS[metric].read(r)
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
        "metrics": {name: stats.describe(m.values(ok), m.positive) for name, m in METRICS.items()},
        "busy_seeds": [r["config"]["seed"] for r in ok if ((r["timings"].get("stability") or {}).get("busy"))],
        "assert_target": first["suite"]["assert_target"],
        "budget": dict(budget),
        "budget_violations": _budget_violations(ok, budget),
        "failures": [
            {"seed": r["config"]["seed"], "error": r.get("error", "")} for r in records if r["status"] == "failed"
        ],
        "runs": sorted(r["run_id"] for r in records),
        "weights": {str(r["config"]["seed"]): r["metrics"].get("weights_sha256") for r in ok},
    }


def machine(record: dict[str, Any]) -> dict[str, Any]:
    """What a timing depends on besides the code (device, chip, tinygrad and its settings), and what the
    numerics depend on (the same, with the CPU's ISA numerics class in place of its model)."""
    env = record["environment"]
    return {
        "cpu": env["cpu"]["model"],
        "gpu": env["gpu"],
        "device": record["device"]["name"],
        "tinygrad": env["packages"]["tinygrad"],
        "tinygrad_env": env["tinygrad_env"],
        "isa": env_mod.numerics_class(_isa(env)) if _on_cpu(record) else None,
    }


def _on_cpu(record: dict[str, Any]) -> bool:
    """Whether the device computes on the CPU (CPU, or any device on a machine without a GPU)."""
    return record["device"]["name"].split(":")[0] == "CPU" or not record["environment"]["gpu"]


def _isa(env: dict[str, Any]) -> str | None:
    """The run's ISA level; for a record from before it was recorded, judged from its SIMD flags."""
    cpu = env["cpu"]
    if cpu.get("isa") or not cpu.get("simd_flags"):
        return cpu.get("isa")
    return env_mod.isa_level(cpu["simd_flags"], env["os"]["machine"])


def _machines(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen = {}
    for r in records:
        m = machine(r)
        seen[results.dumps(m)] = m
    return [seen[k] for k in sorted(seen)]


ENV_FIELDS = ("device", "cpu", "gpu", "tinygrad", "tinygrad_env")


def env_differences(
    before: list[dict[str, Any]],
    after: list[dict[str, Any]],
    names: tuple[str, str] = ("baseline", "current"),
    fields: tuple[str, ...] = ENV_FIELDS,
) -> list[str]:
    """One line per field whose values differ between two sets of machines (`machine()` dicts, or any
    dicts with those fields): `field: baseline A vs current B`. The one environment diff of compare,
    continuous and repro."""
    out = []
    for name in fields:
        a = sorted({json.dumps(m.get(name), sort_keys=True) for m in before})
        b = sorted({json.dumps(m.get(name), sort_keys=True) for m in after})
        if a != b:
            out.append(f"{name}: {names[0]} {', '.join(a)} vs {names[1]} {', '.join(b)}")
    return out


def _check_one_beam(groups: dict[str, list[dict[str, Any]]]) -> None:
    """Refuse to pool seeds run with different BEAM widths: their step times measure different kernels."""
    for key, records in sorted(groups.items()):
        if len(beams := sorted({kernel_search.record_beam(r) for r in records})) > 1:
            raise HarnessError(
                f"{key}: runs with different BEAM widths ({', '.join(map(str, beams))}; 0 = no kernel search) are "
                "mixed; summarize searched and unsearched runs apart"
            )


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
    _check_one_beam(groups)
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


# --- judging ----------------------------------------------------------------------------------------


def problems(summary: dict[str, Any], label: str = "key", budgets: bool = True) -> list[str]:
    """Why a summary does not pass: failed runs, missed targets (where asserted), budgets exceeded (unless
    `budgets` is False: see budget_overruns), missing runs. `label` names each config by that field: `key`
    (name@device), or `name` where one device is meant (a comparison)."""
    out = []
    for c in summary["configs"]:
        n, who = len(c["seeds"]), c[label]
        if c["failures"]:
            seed, error = c["failures"][0]["seed"], c["failures"][0]["error"]
            out.append(f"{who}: {len(c['failures'])} of {n} run(s) failed (seed {seed}: {error})")
        if c["assert_target"] and c["targets_met"] < n:
            out.append(f"{who}: target {c['target']:g}% met by {c['targets_met']} of {n} seed(s)")
        out += [f"{who}: {v}" for v in c["budget_violations"]] if budgets else []
    if summary["n_runs"] < summary["n_expected"]:
        out.append(f"only {summary['n_runs']} of {summary['n_expected']} runs have results")
    return out


def budget_overruns(summary: dict[str, Any], label: str = "key") -> list[str]:
    """The runs over their suite's time budget, as `problems` words them: what stays a warning where budgets
    do not fail (a shared CI runner, whose speed is the VM's, not the code's)."""
    return [f"{c[label]}: {v}" for c in summary["configs"] for v in c["budget_violations"]]


# --- files and merging ------------------------------------------------------------------------------


def path_in(out_dir: Path, suite_name: str) -> Path:
    """Where a suite run writes its summary."""
    return out_dir / f"{suite_name}.summary.json"


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


def covered(suite_name: str) -> set[str]:
    """Suite names whose results count for `suite_name` (itself and what it includes)."""
    try:
        return suites.covered(suite_name)
    except HarnessError:  # not a shipped suite nor a path here: only its own results
        return {suite_name}


def _same_config(record: dict[str, Any]) -> tuple[str, str, int]:
    """A config's identity for pooling seeds: its key, spec and BEAM width (searched kernels time differently)."""
    return config_key(record), results.dumps(_config_without_seed(record)), kernel_search.record_beam(record)


def write_for_suite(
    suite_name: str, expected_keys: set[str], records: list[dict[str, Any]], out_dir: Path
) -> tuple[dict[str, Any], Path]:
    """Summarize a suite run's records plus other seeds of the same configs already in the folder
    (a concurrent or earlier run), under a lock so concurrent runs do not clobber the summary."""
    with atomic.folder_lock(out_dir):
        found, _ = load_runs([out_dir])
        wanted, names, mine = {_same_config(r) for r in records}, covered(suite_name), {r["run_id"] for r in records}
        extra = [
            r
            for r in found
            if r.get("suite", {}).get("name") in names and r["run_id"] not in mine and _same_config(r) in wanted
        ]
        by_key = {record_key(r): r for r in [*extra, *records]}
        expected = len(expected_keys | set(by_key))
        doc = build(suite_name, list(by_key.values()), expected=expected, check_suite=False)
        return doc, results.write_validated(path_in(out_dir, suite_name), doc, "summary")


def _suite_of(records: list[dict[str, Any]]) -> str:
    names = sorted({r.get("suite", {}).get("name", "") for r in records})
    if names == [""]:
        raise HarnessError(
            "these results come from single runs (`mnist-bench mlp`/`cnn`), not a suite; "
            "summaries and comparisons need `mnist-bench suite run` results"
        )
    suite_name = next((n for n in names if n and set(names) <= covered(n)), None)
    if suite_name is None:
        raise HarnessError(
            f"results come from {len(names)} suites ({', '.join(s or '(none)' for s in names)}) and none "
            "includes the others; merge one suite at a time"
        )
    return suite_name


def merge(paths: list[Path], out: Path | None = None) -> tuple[dict[str, Any], Path | None, list[str]]:
    """One summary from the run results in shard folders; returns (summary, path, skipped files)."""
    inputs.check_distinct([("PATHS", p) for p in paths], [("-o", out)])
    records, skipped = load_runs(paths)
    if not records:
        raise HarnessError("no run results found in " + ", ".join(map(str, paths)))
    suite_name = _suite_of(records)
    keys = [record_key(r) for r in records]
    if dups := sorted({k for k in keys if keys.count(k) > 1}):
        raise HarnessError(f"the same run appears more than once: {', '.join(dups[:5])}")
    doc = build(suite_name, records, check_suite=False)
    path = results.write_validated(out, doc, "summary") if out else None
    return doc, path, skipped
