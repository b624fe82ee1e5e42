"""Compare two sets of results (a current and a baseline, each a summary, a stored baseline, a run file or a
folder of runs): match configs by name, decide what is comparable (the same chip for wall-clock, the same
numerics for bit-identity), judge every config in both by the rules (harness.gate.rules), and build the
comparison document. Configs on one side only are named in a warning, not compared."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness import documents
from harness.base.errors import HarnessError
from harness.base.metrics import METRICS, format_stat, metric_of
from harness.documents import baselines, schema, suites, summary
from harness.gate.rules import BIT_IDENTICAL, NUMERICS_CHANGED, PLAIN, Rule, judge, resolve


def _by_name(doc: dict[str, Any], side: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for c in doc["configs"]:
        if c["name"] in out:
            raise HarnessError(
                f"the {side} has {c['name']} on more than one device ({out[c['name']]['device']}, {c['device']}); "
                "compare one device at a time"
            )
        out[c["name"]] = c
    return out


def match_configs(current: dict[str, Any], baseline: dict[str, Any]) -> tuple[list[tuple[dict, dict]], list[str]]:
    """(pairs of configs of the same name, warnings): a config on one side only is named, not compared; a
    side of one config is paired with the other side's one config whatever their names (`compare A B` of
    two single runs that differ in a setting). No config in common is an error."""
    cur, base = _by_name(current, "current"), _by_name(baseline, "baseline")
    if len(cur) == len(base) == 1 and set(cur) != set(base):
        (c,), (b,) = cur.values(), base.values()
        return [(c, b)], [f"{c['name']}: compared with the baseline's {b['name']}"]
    if not (common := sorted(set(cur) & set(base))):
        raise HarnessError(
            f"no config in common: the current results have {', '.join(sorted(cur))}; "
            f"the baseline has {', '.join(sorted(base))}"
        )
    warnings = [f"{n}: only in the baseline, not compared" for n in sorted(set(base) - set(cur))]
    warnings += [f"{n}: only in the current results, not compared" for n in sorted(set(cur) - set(base))]
    return [(cur[n], base[n]) for n in common], warnings


def setting_differences(pairs: list[tuple[dict, dict]]) -> list[str]:
    """One line per pair of configs whose settings differ: a comparison of two configs, not of two versions."""
    out = []
    for cur, base in pairs:
        if changes := summary.setting_changes(base["config"], cur["config"]):
            words = ", ".join(f"{k} {summary.plain(a)} -> {summary.plain(b)}" for k, (a, b) in changes.items())
            out.append(f"{cur['name']}: settings differ from the baseline's: {words}")
    return out


def repeat_notes(pairs: list[tuple[dict, dict]]) -> list[str]:
    """Where a side ran a seed more than once: accuracy counts seeds, the clocks count runs."""
    out = []
    for cur, base in pairs:
        for side, c in (("baseline", base), ("current", cur)):
            if note := summary.repeats(c):
                out.append(f"{cur['name']}: the {side} has {note} (accuracy is over seeds, times over runs)")
    return out


def select(doc: dict[str, Any], patterns: list[str] | tuple[str, ...], side: str) -> dict[str, Any]:
    """The summary with only the configs whose name matches one of the globs (`suite run --only`'s
    matching); a pattern that matches no config is an error."""
    if not patterns:
        return doc
    configs = suites.select(doc["configs"], list(patterns), name=lambda c: c["name"], where=f" in the {side}")
    dropped = sum(len(c["seeds"]) for c in doc["configs"]) - sum(len(c["seeds"]) for c in configs)
    n_failed = sum(len(c["failures"]) for c in configs)
    return {
        **doc,
        "configs": configs,
        "n_runs": doc["n_runs"] - dropped,
        "n_expected": doc["n_expected"] - dropped,
        "n_failed": n_failed,
    }


def seed_differences(pairs: list[tuple[dict, dict]]) -> list[str]:
    """One line per config whose seeds differ from the baseline's: fewer repeats, less power to see a change."""
    out = []
    for cur, base in pairs:
        if (a := sorted(set(cur["seeds"]))) != (b := sorted(set(base["seeds"]))):
            out.append(
                f"{cur['name']}: seeds {a} vs the baseline's {b}; rerun the same seeds for a like-for-like comparison"
            )
    return out


def missing_baseline(path: str) -> str:
    return f"no baseline at {path}; create one with `mnist-bench baseline save SUMMARY`"


def _chips(machines: list[dict[str, Any]]) -> set[str]:
    """The chips the runs were timed on: each machine's first GPU, else its CPU model."""
    return {m["gpu"][0] if m["gpu"] else m["cpu"] for m in machines}


def clock_comparable(base: list[dict[str, Any]], cur: list[dict[str, Any]]) -> bool:
    """Wall-clock means something only between runs on one and the same chip (a self-hosted runner, or
    the same-runner A/B): a hosted fleet's VMs differ in CPU model, clock and neighbours."""
    return len(chips := _chips(base)) == 1 and chips == _chips(cur)


def _numerics(machines: list[dict[str, Any]]) -> set[str]:
    """What the bits depend on besides the code: device, tinygrad and its settings, ISA numerics class."""
    return {documents.dumps({k: m.get(k) for k in ("device", "tinygrad", "tinygrad_env", "isa")}) for m in machines}


def same_bits(cur: dict[str, Any], base: dict[str, Any], numerics_match: bool) -> bool | None:
    """True: every seed's final weights equal the baseline's; False: the bits changed where nothing they
    depend on did (a numerics change of the code); None: not comparable (other seeds, another ISA class,
    tinygrad or device, other settings, or hashes not recorded)."""
    a, b = cur.get("weights") or {}, base.get("weights") or {}
    if summary.setting_changes(base["config"], cur["config"]):
        return None  # two configs, not two versions of one: other bits are expected
    if not numerics_match or not a or set(a) != set(b) or None in a.values() or None in b.values():
        return None
    return a == b


def _rows(
    pairs: list[tuple[dict, dict]], rules: list[Rule], clock_gated: bool, numerics_match: bool
) -> tuple[list[dict], list[str], list[str], list[str]]:
    """(rows, regressions, untested, notes) of every rule on every matched config; notes say which configs
    computed the baseline's bits and which changed them."""
    rows, regressions, untested, notes = [], [], [], []
    for cur, base in pairs:
        bits = same_bits(cur, base, numerics_match)
        r, g, u = judge(
            cur["name"], base["metrics"], cur["metrics"], rules, clock_gated=clock_gated, bit_identical=bool(bits)
        )
        rows, regressions, untested = rows + r, regressions + g, untested + u
        if bits is not None:
            notes.append(f"{cur['name']}: {BIT_IDENTICAL if bits else NUMERICS_CHANGED}")
    return rows, regressions, untested, notes


def compare(
    current: dict[str, Any],
    baseline: dict[str, Any] | None,
    rules: list[Rule],
    *,
    current_path: str,
    baseline_path: str,
    strict_env: bool = False,
    budgets: bool = True,
) -> dict[str, Any]:
    """The comparison document (validated against comparison.schema.json). With no baseline
    (`baseline` None) nothing is compared, but the current summary's own problems still decide; a run over
    its time budget is one of them, or (`budgets` False) only a warning."""
    env_diff = summary.env_differences(baseline["machines"], current["machines"]) if baseline is not None else []
    if env_diff and strict_env:
        raise HarnessError("environment differs from the baseline (--strict-env): " + "; ".join(env_diff))
    pairs, unmatched = match_configs(current, baseline) if baseline is not None else ([], [])
    _by_name(current, "current")
    base_machines = baseline["machines"] if baseline is not None else []
    clock_gated = clock_comparable(base_machines, current["machines"])
    numerics_match = len(n := _numerics(current["machines"])) == 1 and n == _numerics(base_machines)
    rows, regressions, untested, notes = _rows(pairs, rules, clock_gated, numerics_match)
    problems = regressions + summary.problems(current, label="name", budgets=budgets)
    if baseline is None:
        warnings = [missing_baseline(baseline_path)]
    else:
        warnings = _suite_warning(current, baseline) + unmatched + setting_differences(pairs)
        warnings += seed_differences(pairs) + repeat_notes(pairs) + untested
    warnings += [] if budgets else [f"over budget (not gated): {o}" for o in summary.budget_overruns(current, "name")]
    if any(PLAIN in r["reason"] for r in rows):
        warnings.append(
            "rows marked `a plain difference` have one value on each side, so noise cannot be told from a change; "
            "more runs on each side test them (times: any runs; accuracy: other seeds, `--seed N`, "
            "`suite run --repeat N`)"
        )
    if baseline is not None and not clock_gated and any(METRICS[r.metric].clock for r in rules):
        chips = f"{', '.join(sorted(_chips(base_machines)))} vs {', '.join(sorted(_chips(current['machines'])))}"
        warnings.append(f"wall-clock not gated: the baseline and the current runs ran on other chips ({chips})")
    return document(
        current["suite"],
        {"path": current_path, "machines": current["machines"]},
        {"path": baseline_path, "machines": baseline["machines"]} if baseline is not None else None,
        rules,
        env_diff,
        warnings,
        rows,
        problems,
        numerics=notes,
    )


def _suite_warning(current: dict[str, Any], baseline: dict[str, Any]) -> list[str]:
    if current["suite"] == baseline["suite"]:
        return []
    return [
        f"the current results are of {current['suite']}, the baseline of {baseline['suite']}: "
        "configs are matched by name"
    ]


def document(
    suite: str,
    current: dict[str, Any],
    baseline: dict[str, Any] | None,
    rules: list[Rule],
    env_diff: list[str],
    warnings: list[str],
    rows: list[dict[str, Any]],
    problems: list[str],
    **extra: Any,
) -> dict[str, Any]:
    """The validated comparison document; `problems` decide the verdict. `extra`: optional fields (workload)."""
    doc = {
        **documents.header("comparison"),
        "suite": suite,
        "current": current,
        "baseline": baseline,
        "rules": [r.text for r in rules],
        "env_differences": env_diff,
        "warnings": warnings,
        "rows": rows,
        "problems": problems,
        "verdict": "regression" if problems else "pass",
        **extra,
    }
    schema.check(doc, "comparison")
    return doc


def from_paths(
    current_path: Path,
    *,
    baseline: str = "auto",
    rules: list[str] | tuple[str, ...] = (),
    only_rules: bool = False,
    only: list[str] | tuple[str, ...] = (),
    root: Path = baselines.DEFAULT_ROOT,
    strict_env: bool = False,
    allow_missing: bool = False,
    budgets: bool = True,
) -> dict[str, Any]:
    """`mnist-bench compare`: CURRENT against `baseline`, each a run file, a folder of run results (any
    suites and single runs), a summary or a stored baseline; `baseline` may also be `auto`, the stored one
    for CURRENT's suite and device key under `root`. Rule texts replace the defaults of their metrics
    (`only_rules`: replace them all); `only` globs keep the configs whose names match."""
    parsed = resolve(rules, only=only_rules)
    current = select(baselines.load_side(current_path), only, "current results")
    path = baselines.locate(baseline, current, root)
    if not path.exists() and not allow_missing:
        raise HarnessError(missing_baseline(str(path)) if baseline == "auto" else f"{path}: no such file or folder")
    doc = compare(
        current,
        select(baselines.load_side(path), only, "baseline") if path.exists() else None,
        parsed,
        current_path=str(current_path),
        baseline_path=str(path),
        strict_env=strict_env,
        budgets=budgets,
    )
    return doc


def delta_text(row: dict[str, Any]) -> str:
    """A percentage metric's change in points (97.2% -> 97.1% is -0.10 pp); any other's relative change."""
    if row["delta"] is None:
        return "-"
    if metric_of(row["metric"]).unit == "%":
        return f"{row['delta']:+.2f} pp"
    return "-" if row["delta_pct"] is None else f"{row['delta_pct']:+.1f}%"


def side_lines(doc: dict[str, Any]) -> list[str]:
    """An A/B's sides (`continuous`): what each was, and which tinygrad ran it on which device."""
    # the schema leaves a side's machines free-form (a summary's and a continuous run's differ): say what is there
    lines = []
    for label, side in (("base", doc["baseline"]), ("head", doc["current"])):
        for m in (side or {}).get("machines", [])[:1]:
            lines.append(
                f"{m.get('side', label)}: {m.get('revision') or 'unknown'}: "
                f"tinygrad {m.get('tinygrad') or 'unknown'} on {m.get('device') or 'unknown'}"
            )
    return lines if doc["suite"] == "continuous" else []


HEAD = ("config", "metric", "baseline", "current", "delta", "verdict", "reason")


def _cells(doc: dict[str, Any]) -> list[tuple[str, ...]]:
    return [
        (
            r["config"],
            r["metric"],
            format_stat(r["baseline"], r["metric"]),
            format_stat(r["current"], r["metric"]),
            delta_text(r),
            r["verdict"].upper(),
            r["reason"],
        )
        for r in doc["rows"]
    ]


def _word(doc: dict[str, Any]) -> str:
    return "PASS" if doc["verdict"] == "pass" else "REGRESSION"


def markdown(doc: dict[str, Any], *, problems: bool = True) -> str:
    """The comparison in Markdown; `problems` False leaves the list of problems to an enclosing view."""
    lines = [f"### mnist-bench compare: `{doc['suite']}`: **{_word(doc)}**", ""]
    if sides := side_lines(doc):
        lines += [f"- {line}" for line in sides] + [""]
    lines += [f"> :warning: **environment differs**: {d}" for d in doc["env_differences"]]
    lines += [f"> :warning: {w}" for w in doc.get("warnings", [])]
    lines += [f"> **numerics**: {n}" for n in doc.get("numerics", [])]
    if doc["rows"]:
        lines += ([""] if lines[-1] else []) + [documents.table(HEAD, _cells(doc), "markdown"), ""]
    fails = [f"- :x: {p}" for p in doc["problems"] if problems]
    return "\n".join(lines + ([""] if lines[-1] and fails else []) + fails)


def text(doc: dict[str, Any]) -> str:
    lines = side_lines(doc)
    if doc["suite"] != "continuous" and doc["baseline"]:  # which side is which, as given on the command line
        lines.append(f"current {doc['current']['path']} against baseline {doc['baseline']['path']}")
    lines += [f"WARNING: environment differs from the baseline: {d}" for d in doc["env_differences"]]
    lines += [f"WARNING: {w}" for w in doc.get("warnings", [])]
    lines += [f"numerics: {n}" for n in doc.get("numerics", [])]
    if doc["rows"]:
        lines.append(documents.table(HEAD, _cells(doc)))
    return "\n".join([*lines, *(f"FAIL {p}" for p in doc["problems"]), f"verdict: {_word(doc)}"])


documents.views("comparison", text=text, markdown=markdown)
