"""The summary document's owner: per-config statistics over seeds of every registered metric
(harness.base.metrics), built from run records (so a merge of shards equals an unsharded run), run keys, and
`problems()`, the one judgement of whether a summary passes.

Seeds, not files: repeats of one seed (the same config run again with the same seed) are not independent
samples of anything the numerics decide. Accuracy, loss, steps to target and the exact counts take one value
per distinct seed, the mean of its repeats (equal runs when their final weights hashes agree: exact copies);
a metric measured by a clock (Metric.clock) takes every run, since each process's timing noise is its own
whatever the seed. A config's `seeds` lists one entry per run, so a repeated seed shows as repeated."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from harness import documents
from harness.base import atomic, stats
from harness.base.errors import HarnessError
from harness.base.metrics import METRICS
from harness.documents import schema, suites
from harness.tg import env as env_mod
from harness.tg import kernel_search
from harness.tg.spec import RunSpec, run_key

# --- run keys ---------------------------------------------------------------------------------------


def config_key(record: dict[str, Any]) -> str:
    """The record's config identity, `name@device` (the suite's run name, not the seed)."""
    return run_key(record["suite"]["run"], record["device"]["name"])


def record_key(record: dict[str, Any]) -> str:
    """The record's run identity, `name@device#seedN`, as `PlannedRun.key` spells it."""
    return run_key(record["suite"]["run"], record["device"]["name"], record["config"]["seed"])


# --- single runs ----------------------------------------------------------------------------------

SINGLE_RUNS = "single-runs"  # the suite name of results of `mnist-bench mlp`/`cnn`, which belong to none


def flat_settings(config: dict[str, Any]) -> dict[str, Any]:
    """A run's settings with its model_config's keys beside the others (without the seed)."""
    inner = config.get("model_config")  # a summary's `config` is free-form in its schema: take what is there
    return {
        **{k: v for k, v in config.items() if k not in ("model_config", "seed")},
        **(inner if isinstance(inner, dict) else {}),
    }


def plain(value: Any) -> str:
    """A setting's value in a name or a sentence: 0.002, 512x512, adam."""
    if isinstance(value, list):
        return "x".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def non_defaults(model: str, config: dict[str, Any]) -> dict[str, Any]:
    """The settings of `config` that differ from the model's harness defaults (model_config's after the rest)."""
    base, cur = flat_settings(RunSpec.defaults(model).to_json()), flat_settings(config)
    return {k: v for k, v in cur.items() if k != "model" and base.get(k, v) != v}


def single_run_name(record: dict[str, Any]) -> str:
    """A single run's config name: its model and every setting that differs from the model's defaults
    (`mlp`, `mlp-steps=20`, `cnn-batch_size=64-lr=0.001`), so that equal names mean equal settings."""
    changed = non_defaults(record["model"], record["config"])
    return "-".join([record["model"], *(f"{k}={plain(changed[k])}" for k in sorted(changed))])


def with_suite(record: dict[str, Any]) -> dict[str, Any]:
    """The record with a suite block: its own, or for a single run one naming it by its settings. A single
    run's target is not asserted here: its own exit code judged it (`--no-assert-target` is not recorded),
    and a comparison judges differences."""
    if record.get("suite") is not None:
        return record
    block = {
        "name": SINGLE_RUNS,
        "run": single_run_name(record),
        "category": "single run",
        "description": "",
        "assert_target": False,
        "budget": {},
    }
    return {**record, "suite": block}


def repeats(config: dict[str, Any]) -> str | None:
    """`3 runs of 1 seed: repeats, not seeds` where a summary config holds a seed more than once, else None."""
    n_runs, n_seeds = len(config["seeds"]), len(set(config["seeds"]))
    if n_runs == n_seeds:
        return None
    return f"{n_runs} runs of {n_seeds} seed{'s' if n_seeds > 1 else ''}: repeats, not seeds"


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


def _seed(record: dict[str, Any]) -> int:
    return record["config"]["seed"]


def _per_seed(values: list[tuple[int, float | None]]) -> list[float | None]:
    """One value per distinct seed: the mean of its repeats' measured values (None where none was)."""
    by_seed: dict[int, list[float]] = defaultdict(list)
    for seed, v in values:
        if v is not None:
            by_seed[seed].append(v)
    return [sum(vs) / len(vs) if (vs := by_seed.get(seed)) else None for seed in sorted({s for s, _ in values})]


def metric_stats(records: list[dict[str, Any]]) -> dict[str, dict[str, Any] | None]:
    """Every metric's statistics over these runs of one config: a clock's over runs, any other's over seeds."""
    out = {}
    for name, m in METRICS.items():
        values = m.values(records) if m.clock else _per_seed([(_seed(r), m.read(r)) for r in records])
        out[name] = stats.describe(values, m.positive)
    return out


def _weights(records: list[dict[str, Any]]) -> dict[str, str | None]:
    """Each seed's final-weights hash; None where it was not recorded or its repeats computed other bits."""
    hashes: dict[str, set] = defaultdict(set)
    for r in records:
        hashes[str(_seed(r))].add(r["metrics"].get("weights_sha256"))
    return {seed: next(iter(h)) if len(h) == 1 else None for seed, h in hashes.items()}


def summarize_config(records: list[dict[str, Any]]) -> dict[str, Any]:
    records = sorted(records, key=lambda r: (_seed(r), r["run_id"]))
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
        "metrics": metric_stats(ok),
        "busy_seeds": sorted({_seed(r) for r in ok if ((r["timings"].get("stability") or {}).get("busy"))}),
        "assert_target": first["suite"]["assert_target"],
        "budget": dict(budget),
        "budget_violations": _budget_violations(ok, budget),
        "failures": [
            {"seed": r["config"]["seed"], "error": r.get("error", "")} for r in records if r["status"] == "failed"
        ],
        "runs": sorted(r["run_id"] for r in records),
        "weights": _weights(ok),
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
        seen[documents.dumps(m)] = m
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


def _check_one_config(groups: dict[str, list[dict[str, Any]]]) -> None:
    """Refuse to pool runs under one name whose settings differ (results of an edited suite, or two suites
    naming different configs alike) or whose BEAM widths differ (their step times measure other kernels)."""
    for key, records in sorted(groups.items()):
        if len(beams := sorted({kernel_search.record_beam(r) for r in records})) > 1:
            raise HarnessError(
                f"{key}: runs with different BEAM widths ({', '.join(map(str, beams))}; 0 = no kernel search) are "
                "mixed; summarize searched and unsearched runs apart"
            )
        settings = {documents.dumps(_config_without_seed(r)): r for r in records}
        if len(settings) > 1:
            a, b = (r["config"] for r in list(settings.values())[:2])
            diff = ", ".join(f"{k} {plain(x)} vs {plain(y)}" for k, (x, y) in setting_changes(a, b).items())
            raise HarnessError(
                f"{key}: runs with different settings share this name ({diff}); summarize them apart "
                "(another folder, or --only)"
            )


def setting_changes(a: dict[str, Any], b: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """{setting: (a's value, b's value)} of every setting two run configs set differently (seed aside)."""
    fa, fb = flat_settings(a), flat_settings(b)
    keys = sorted(set(fa) | set(fb))
    return {k: (fa.get(k), fb.get(k)) for k in keys if documents.dumps(fa.get(k)) != documents.dumps(fb.get(k))}


def build(
    suite: str, records: list[dict[str, Any]], expected: int | None = None, check_suite: bool = True
) -> dict[str, Any]:
    """The summary document of a suite from its run records (order-independent).

    `check_suite` refuses records of other suites; a suite run turns it off because a suite that
    includes another (explore includes mlp-explore) may reuse the included suite's results.
    """
    if not records:
        raise HarnessError(f"suite {suite!r}: no run results to summarize")
    records = list({r["run_id"]: r for r in records}.values())  # one run read twice (a copy of its file) is one run
    others = sorted({r["suite"]["name"] for r in records if r.get("suite", {}).get("name") != suite})
    if others and check_suite:
        raise HarnessError(f"results of other suites mixed in: {', '.join(others)}")
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[config_key(r)].append(r)
    _check_one_config(groups)
    configs = [summarize_config(groups[k]) for k in sorted(groups)]
    return {
        **documents.header("summary"),
        "suite": suite,
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
            of = f"{n} seed(s)" if repeats(c) is None else f"{n} runs ({repeats(c)})"
            out.append(f"{who}: target {c['target']:g}% met by {c['targets_met']} of {of}")
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
    for f in documents.json_files(paths):
        try:
            doc = documents.upgrade(documents.read_json(f), str(f))
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
    return config_key(record), documents.dumps(_config_without_seed(record)), kernel_search.record_beam(record)


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
        return doc, documents.write(path_in(out_dir, suite_name), doc, "summary")


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


def of_runs(records: list[dict[str, Any]], nothing: str) -> dict[str, Any]:
    """A summary of whatever run records are given (one side of a comparison): grouped by config identity
    (name and device, with equal settings), whichever suites they come from; single runs are named by their
    settings (`with_suite`), and repeats of a seed are allowed (they count as repeats, not seeds). Its suite
    is the one that covers every record's, else the suites' names joined with ` + `. `nothing`: the error
    message where there are no records."""
    if not records:
        raise HarnessError(nothing)
    records = [with_suite(r) for r in records]
    names = sorted({r["suite"]["name"] for r in records})
    label = next((n for n in names if set(names) <= covered(n)), None) or " + ".join(names)
    return build(label, records, check_suite=False)


def is_suite(label: str) -> bool:
    """Whether a summary's suite is one suite's name (not single runs, not several suites together)."""
    return label != SINGLE_RUNS and " + " not in label


def merge(paths: list[Path]) -> tuple[dict[str, Any], list[str]]:
    """One summary from the run results in shard folders; returns (summary, skipped files)."""
    records, skipped = load_runs(paths)
    if not records:
        raise HarnessError("no run results found in " + ", ".join(map(str, paths)))
    suite_name = _suite_of(records)
    keys = [record_key(r) for r in records]
    if dups := sorted({k for k in keys if keys.count(k) > 1}):
        raise HarnessError(f"the same run appears more than once: {', '.join(dups[:5])}")
    return build(suite_name, records, check_suite=False), skipped
