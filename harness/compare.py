"""Compare a suite summary with a baseline: parsed rules, noise-aware verdicts, reasons.

A rule such as `accuracy:-0.3pp` or `step_time:+10%` names a metric, the bad direction and a minimum
effect. A change is a regression only when it exceeds that effect AND the noise between seeds:
for points (pp) the drop must exceed max(rule, 2 x the standard error of the difference of means);
for percentages a one-sided Welch t-test on log values over repeats must give p < alpha.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import baselines, inputs, results, schema, summary, tdist
from harness.errors import HarnessError

ALPHA = 0.05
NOISE_Z = 2.0


@dataclass(frozen=True)
class Rule:
    text: str
    metric: str  # summary metric name
    bad_sign: int  # +1: an increase is bad, -1: a decrease is bad
    amount: float
    unit: str  # the rule's kind, a key of RULE_KINDS: "pp" (absolute points) or "%" (relative)

    def check(self, base: dict[str, Any] | None, cur: dict[str, Any] | None) -> tuple[str, str, float | None]:
        """(verdict, reason, p-value) for one config."""
        if base is None or cur is None:
            side = "baseline" if base is None else "current"
            return "info", f"no {self.metric} values in the {side}", None
        if self.unit == "%" and summary.METRICS[self.metric].exact:
            return _check_exact(self, base, cur)
        return RULE_KINDS[self.unit](self, base, cur)


def _check_points(rule: Rule, base: dict[str, Any], cur: dict[str, Any]) -> tuple[str, str, float | None]:
    """Worse by more than the rule's points AND by more than twice the seed noise of the difference."""
    worse = rule.bad_sign * (cur["mean"] - base["mean"])
    noise = NOISE_Z * math.sqrt(_seed_var(base, cur) / base["n"] + _seed_var(cur, base) / cur["n"])
    tolerance = max(rule.amount, noise)
    detail = f"tolerance {tolerance:.2f} pp = max(rule {rule.amount:g}, {NOISE_Z:g} x seed SE {noise / 2:.2f})"
    if worse > tolerance:
        return "regression", f"{'+' if rule.bad_sign > 0 else '-'}{worse:.2f} pp worse > {detail}", None
    if -worse > tolerance:
        return "improvement", f"{-worse:.2f} pp better, beyond {detail}", None
    return "pass", f"within {detail}", None


def _check_relative(rule: Rule, base: dict[str, Any], cur: dict[str, Any]) -> tuple[str, str, float | None]:
    """Worse by more than the rule's percentage AND significantly so (Welch on logs over repeats)."""
    if base["mean"] <= 0 or cur["mean"] <= 0:
        return "info", "non-positive values cannot be compared in %", None
    worse_pct = rule.bad_sign * (cur["mean"] / base["mean"] - 1) * 100
    p_worse = _one_sided_log_p(base["values"], cur["values"], rule.bad_sign)
    p_better = _one_sided_log_p(base["values"], cur["values"], -rule.bad_sign)
    if p_worse is None:
        return "info", f"{worse_pct:+.1f}% worse; needs >= 2 repeats on each side to test", None
    if worse_pct > rule.amount and p_worse < ALPHA:
        return "regression", f"{worse_pct:.1f}% worse > {rule.amount:g}% and significant (p={p_worse:.3g})", p_worse
    if -worse_pct > rule.amount and p_better is not None and p_better < ALPHA:
        return "improvement", f"{-worse_pct:.1f}% better (p={p_better:.3g})", p_better
    why = "below the minimum effect" if worse_pct <= rule.amount else f"not significant (p={p_worse:.3g})"
    return "pass", f"{worse_pct:+.1f}% worse: {why}", p_worse


def _check_exact(rule: Rule, base: dict[str, Any], cur: dict[str, Any]) -> tuple[str, str, float | None]:
    """A deterministic count: every seed gives one value, and any change beyond the rule's % counts."""
    b, c = set(base["values"]), set(cur["values"])
    if len(b) > 1 or len(c) > 1:
        return "info", f"not deterministic: the seeds disagree (baseline {sorted(b)}, current {sorted(c)})", None
    old, new = b.pop(), c.pop()
    if old == new:
        return "pass", f"identical ({new:,.15g})", None
    worse_pct = rule.bad_sign * (new / old - 1) * 100 if old else math.inf
    change = f"{old:,.15g} -> {new:,.15g} ({(new / old - 1) * 100 if old else math.inf:+.3g}%)"
    if worse_pct > rule.amount:
        return "regression", f"{change}: worse by more than {rule.amount:g}% (exact count)", None
    return ("improvement" if worse_pct < 0 else "pass"), f"{change}: changed (exact count)", None


# A rule's kind (the unit after its number) -> its check. Both are noise-aware, for measured values;
# a % rule on a deterministic count (Metric.exact) is checked by _check_exact instead.
RULE_KINDS: dict[str, Callable[[Rule, dict[str, Any], dict[str, Any]], tuple[str, str, float | None]]] = {
    "pp": _check_points,
    "%": _check_relative,
}
KIND_WORDS = {"pp": "points (pp)", "%": "percentages (%)"}
RULE_RE = re.compile(
    r"^\s*([a-z_0-9]+)\s*:\s*([+-])\s*(\d+(?:\.\d+)?)\s*(" + "|".join(map(re.escape, RULE_KINDS)) + r")\s*$"
)
DEFAULT_RULES = tuple(f"{m.alias}:{m.default_rule}" for m in summary.METRICS.values() if m.default_rule)


def _seed_var(side: dict[str, Any], other: dict[str, Any]) -> float:
    """Seed-to-seed variance of one side; a single seed has none of its own, so it borrows the other side's."""
    return (side["std"] if side["n"] > 1 else other["std"]) ** 2


def _one_sided_log_p(base: list[float], cur: list[float], bad_sign: int) -> float | None:
    """p-value that `cur` is worse than `base` in the bad direction (Welch t-test on logs)."""
    if len(base) < 2 or len(cur) < 2 or min(base + cur) <= 0:
        return None
    a, b = [math.log(v) for v in cur], [math.log(v) for v in base]
    if max(a) == min(a) and max(b) == min(b):
        return 0.0 if bad_sign * (a[0] - b[0]) > 0 else 1.0
    return tdist.welch_p(a, b, "greater" if bad_sign > 0 else "less")


def parse_rule(text: str) -> Rule:
    match = RULE_RE.match(text)
    if not match:
        raise HarnessError(f"bad rule {text!r}: expected METRIC:+N% or METRIC:-Npp, e.g. step_time:+10%")
    name, sign, amount, kind = match.groups()
    if name not in summary.BY_ALIAS:
        raise HarnessError(f"bad rule {text!r}: unknown metric {name!r}; known: {', '.join(summary.BY_ALIAS)}")
    metric = summary.BY_ALIAS[name]
    if kind not in metric.rule_kinds:
        takers = ", ".join(m.alias for m in summary.METRICS.values() if kind in m.rule_kinds)
        raise HarnessError(
            f"bad rule {text!r}: {KIND_WORDS[kind]} apply to {takers} only; use {metric.rule_kinds[0]} for {name}"
        )
    amount = inputs.finite(amount, f"bad rule {text!r}")  # digits only, but enough of them overflow to inf
    return Rule(text.strip(), metric.name, 1 if sign == "+" else -1, amount, kind)


def _values(s: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if s is None else {"mean": s["mean"], "std": s["std"], "n": s["n"]}


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


def match_configs(current: dict[str, Any], baseline: dict[str, Any]) -> list[tuple[dict, dict]]:
    cur, base = _by_name(current, "current"), _by_name(baseline, "baseline")
    added, missing = sorted(set(cur) - set(base)), sorted(set(base) - set(cur))
    if added or missing:
        raise HarnessError(
            "configs differ from the baseline: "
            f"added {', '.join(added) or 'none'}; missing {', '.join(missing) or 'none'}"
        )
    return [(cur[n], base[n]) for n in sorted(cur)]


def seed_differences(pairs: list[tuple[dict, dict]]) -> list[str]:
    """One line per config whose seeds differ from the baseline's: fewer repeats, less power to see a change."""
    out = []
    for cur, base in pairs:
        if sorted(cur["seeds"]) != sorted(base["seeds"]):
            out.append(
                f"{cur['name']}: seeds {sorted(cur['seeds'])} vs the baseline's {sorted(base['seeds'])}; "
                "rerun the same seeds for a like-for-like comparison"
            )
    return out


def missing_baseline(path: str) -> str:
    return f"no baseline at {path}; create one with `mnist-bench baseline save SUMMARY`"


def judge(
    config: str,
    base: dict[str, Any],
    cur: dict[str, Any],
    rules: list[Rule],
    *,
    clock_gated: bool = True,
    bit_identical: bool = False,
) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """One config's rows under every rule, from each side's metric statistics: (rows, regressions, untested).
    A clock's rule is only shown where the chips differ (`clock_gated` False); where every seed computed
    the baseline's bits (`bit_identical`), what the numerics decide passes without a noise test."""
    rows, regressions, untested = [], [], []
    for rule in rules:
        b, c = base.get(rule.metric), cur.get(rule.metric)
        metric = summary.METRICS[rule.metric]
        if b is None and c is None and metric.exact:
            continue  # cost counts that neither side recorded (runs made before they were): nothing to say
        if metric.clock and not clock_gated:
            verdict, reason, p = "info", NOT_GATED, None
        elif bit_identical and not metric.clock and not metric.exact:
            verdict, reason, p = "pass", BIT_IDENTICAL, None
        else:
            verdict, reason, p = rule.check(b, c)
        delta = c["mean"] - b["mean"] if b and c else None
        rows.append(
            {
                "config": config,
                "metric": rule.metric,
                "baseline": _values(b),
                "current": _values(c),
                "delta": delta,
                "delta_pct": 100 * delta / b["mean"] if delta is not None and b["mean"] else None,
                "p_value": p,
                "verdict": verdict,
                "reason": f"{rule.text}: {reason}",
            }
        )
        if verdict == "regression":
            regressions.append(f"{config} {rule.metric}: {reason}")
        elif verdict == "info" and reason != NOT_GATED:
            untested.append(f"{config} {rule.metric} not tested: {reason}")
    return rows, regressions, untested


NOT_GATED = "not gated: measured on other chips than the baseline"
BIT_IDENTICAL = "bit-identical: every seed's final weights equal the baseline's"
NUMERICS_CHANGED = "numerics changed: final weights differ from the baseline's"


def _chips(machines: list[dict[str, Any]]) -> set[str]:
    """The chips the runs were timed on: each machine's first GPU, else its CPU model."""
    return {m["gpu"][0] if m["gpu"] else m["cpu"] for m in machines}


def clock_comparable(base: list[dict[str, Any]], cur: list[dict[str, Any]]) -> bool:
    """Wall-clock means something only between runs on one and the same chip (a self-hosted runner, or
    the same-runner A/B): a hosted fleet's VMs differ in CPU model, clock and neighbours."""
    return len(chips := _chips(base)) == 1 and chips == _chips(cur)


def _numerics(machines: list[dict[str, Any]]) -> set[str]:
    """What the bits depend on besides the code: device, tinygrad and its settings, ISA numerics class."""
    return {results.dumps({k: m.get(k) for k in ("device", "tinygrad", "tinygrad_env", "isa")}) for m in machines}


def same_bits(cur: dict[str, Any], base: dict[str, Any], numerics_match: bool) -> bool | None:
    """True: every seed's final weights equal the baseline's; False: the bits changed where nothing they
    depend on did (a numerics change of the code); None: not comparable (other seeds, another ISA class,
    tinygrad or device, or hashes not recorded)."""
    a, b = cur.get("weights") or {}, base.get("weights") or {}
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
    if baseline is not None and current["suite"] != baseline["suite"]:
        raise HarnessError(
            f"{baseline_path}: baseline is for suite {baseline['suite']!r}, "
            f"current results are for {current['suite']!r}"
        )
    env_diff = summary.env_differences(baseline["machines"], current["machines"]) if baseline is not None else []
    if env_diff and strict_env:
        raise HarnessError("environment differs from the baseline (--strict-env): " + "; ".join(env_diff))
    pairs = match_configs(current, baseline) if baseline is not None else []
    _by_name(current, "current")
    base_machines = baseline["machines"] if baseline is not None else []
    clock_gated = clock_comparable(base_machines, current["machines"])
    numerics_match = len(n := _numerics(current["machines"])) == 1 and n == _numerics(base_machines)
    rows, regressions, untested, notes = _rows(pairs, rules, clock_gated, numerics_match)
    problems = regressions + summary.problems(current, label="name", budgets=budgets)
    warnings = seed_differences(pairs) + untested if baseline is not None else [missing_baseline(baseline_path)]
    warnings += [] if budgets else [f"over budget (not gated): {o}" for o in summary.budget_overruns(current, "name")]
    if baseline is not None and not clock_gated and any(summary.METRICS[r.metric].clock for r in rules):
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
        "schema_version": schema.SCHEMA_VERSION,
        "kind": "comparison",
        "suite": suite,
        "created_at": results.utc_now(),
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
    root: Path = baselines.DEFAULT_ROOT,
    strict_env: bool = False,
    allow_missing: bool = False,
    output: Path | None = None,
    budgets: bool = True,
) -> dict[str, Any]:
    """`mnist-bench compare`: CURRENT (a summary, a baseline or a folder of run results) against
    `baseline` (a file, or `auto`: the stored one for its suite and device key under `root`), by rule
    texts (default: DEFAULT_RULES); the document is also written to `output` when given."""
    parsed = [parse_rule(t) for t in (rules or DEFAULT_RULES)]
    current = baselines.load_summary_like(current_path)
    path = baselines.locate(baseline, current, root)
    inputs.check_distinct([("CURRENT", current_path), ("--baseline", path)], [("-o", output)])
    if not path.exists() and not allow_missing:
        raise HarnessError(missing_baseline(str(path)))
    doc = compare(
        current,
        baselines.load_summary_like(path) if path.exists() else None,
        parsed,
        current_path=str(current_path),
        baseline_path=str(path),
        strict_env=strict_env,
        budgets=budgets,
    )
    if output:
        results.write_validated(output, doc, "comparison")
    return doc


def describe_values(v: dict[str, Any] | None, metric: str) -> str:
    return summary.format_stat(v, metric)


def delta_text(row: dict[str, Any]) -> str:
    """A percentage metric's change in points (97.2% -> 97.1% is -0.10 pp); any other's relative change."""
    if row["delta"] is None:
        return "-"
    if summary.metric_of(row["metric"]).unit == "%":
        return f"{row['delta']:+.2f} pp"
    return "-" if row["delta_pct"] is None else f"{row['delta_pct']:+.1f}%"


def render(doc: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return results.dumps(doc).rstrip("\n")
    header = ("config", "metric", "baseline", "current", "delta", "verdict", "reason")
    rows = [
        (
            r["config"],
            r["metric"],
            describe_values(r["baseline"], r["metric"]),
            describe_values(r["current"], r["metric"]),
            delta_text(r),
            r["verdict"].upper(),
            r["reason"],
        )
        for r in doc["rows"]
    ]
    verdict = "PASS" if doc["verdict"] == "pass" else "REGRESSION"
    if fmt == "markdown":
        return "\n".join(_markdown(doc, header, rows, verdict))
    return "\n".join(_text(doc, header, rows, verdict))


def _markdown(doc: dict[str, Any], header: tuple[str, ...], rows: list[tuple[str, ...]], verdict: str) -> list[str]:
    lines = [f"### mnist-bench compare: `{doc['suite']}`: **{verdict}**", ""]
    lines += [f"> :warning: **environment differs**: {d}" for d in doc["env_differences"]]
    lines += [f"> :warning: {w}" for w in doc.get("warnings", [])]
    lines += [f"> **numerics**: {n}" for n in doc.get("numerics", [])]
    if rows:
        lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return lines + [""] + [f"- :x: {p}" for p in doc["problems"]]


def _text(doc: dict[str, Any], header: tuple[str, ...], rows: list[tuple[str, ...]], verdict: str) -> list[str]:
    lines = [f"WARNING: environment differs from the baseline: {d}" for d in doc["env_differences"]]
    lines += [f"WARNING: {w}" for w in doc.get("warnings", [])]
    lines += [f"numerics: {n}" for n in doc.get("numerics", [])]
    if rows:
        widths = [max(len(str(x[i])) for x in [header, *rows]) for i in range(len(header))]
        table = [header, *rows]
        lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table]
    return [*lines, *(f"FAIL {p}" for p in doc["problems"]), f"verdict: {verdict}"]
