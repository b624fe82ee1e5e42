"""Compare a suite summary with a baseline: parsed rules, noise-aware verdicts, reasons.

A rule such as `accuracy:-0.3pp` or `step_time:+10%` names a metric, the bad direction and a minimum
effect. A change is a regression only when it exceeds that effect AND the noise between seeds:
for points (pp) the drop must exceed max(rule, 2 x the standard error of the difference of means);
for percentages a one-sided Welch t-test on log values over repeats must give p < alpha.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from harness import results, schema
from harness.errors import HarnessError

METRIC_ALIASES = {
    "accuracy": "accuracy",
    "step_time": "step_time_s",
    "step_time_p10": "step_time_p10_s",
    "time_to_target": "time_to_target_s",
    "samples_per_s": "samples_per_s",
    "compile_time": "compile_s",
    "wall_time": "wall_s",
    "train_time": "train_s",
    "final_loss": "final_loss",
    "steps_to_target": "steps_to_target",
}
DEFAULT_RULES = ("accuracy:-0.3pp", "step_time_p10:+10%")
ALPHA = 0.05
NOISE_Z = 2.0
RULE_RE = re.compile(r"^\s*([a-z_0-9]+)\s*:\s*([+-])\s*(\d+(?:\.\d+)?)\s*(pp|%)\s*$")


@dataclass(frozen=True)
class Rule:
    text: str
    metric: str  # summary metric name
    bad_sign: int  # +1: an increase is bad, -1: a decrease is bad
    amount: float
    unit: str  # "pp" (absolute points) or "%" (relative)

    def check(self, base: dict[str, Any] | None, cur: dict[str, Any] | None) -> tuple[str, str, float | None]:
        """(verdict, reason, p-value) for one config."""
        if base is None or cur is None:
            side = "baseline" if base is None else "current"
            return "info", f"no {self.metric} values in the {side}", None
        if self.unit == "pp":
            return self._check_points(base, cur)
        return self._check_relative(base, cur)

    def _check_points(self, base, cur) -> tuple[str, str, float | None]:
        worse = self.bad_sign * (cur["mean"] - base["mean"])
        noise = NOISE_Z * math.sqrt(_seed_var(base, cur) / base["n"] + _seed_var(cur, base) / cur["n"])
        tolerance = max(self.amount, noise)
        detail = f"tolerance {tolerance:.2f} pp = max(rule {self.amount:g}, {NOISE_Z:g} x seed SE {noise / 2:.2f})"
        if worse > tolerance:
            return "regression", f"{'+' if self.bad_sign > 0 else '-'}{worse:.2f} pp worse > {detail}", None
        if -worse > tolerance:
            return "improvement", f"{-worse:.2f} pp better, beyond {detail}", None
        return "pass", f"within {detail}", None

    def _check_relative(self, base, cur) -> tuple[str, str, float | None]:
        if base["mean"] <= 0 or cur["mean"] <= 0:
            return "info", "non-positive values cannot be compared in %", None
        worse_pct = self.bad_sign * (cur["mean"] / base["mean"] - 1) * 100
        p_worse = _one_sided_log_p(base["values"], cur["values"], self.bad_sign)
        p_better = _one_sided_log_p(base["values"], cur["values"], -self.bad_sign)
        if p_worse is None:
            return "info", f"{worse_pct:+.1f}% worse; needs >= 2 repeats on each side to test", None
        if worse_pct > self.amount and p_worse < ALPHA:
            return "regression", f"{worse_pct:.1f}% worse > {self.amount:g}% and significant (p={p_worse:.3g})", p_worse
        if -worse_pct > self.amount and p_better is not None and p_better < ALPHA:
            return "improvement", f"{-worse_pct:.1f}% better (p={p_better:.3g})", p_better
        why = "below the minimum effect" if worse_pct <= self.amount else f"not significant (p={p_worse:.3g})"
        return "pass", f"{worse_pct:+.1f}% worse: {why}", p_worse


def _seed_var(side: dict[str, Any], other: dict[str, Any]) -> float:
    """Seed-to-seed variance of one side; a single seed has none of its own, so it borrows the other side's."""
    return (side["std"] if side["n"] > 1 else other["std"]) ** 2


def _one_sided_log_p(base: list[float], cur: list[float], bad_sign: int) -> float | None:
    """p-value that `cur` is worse than `base` in the bad direction (Welch t-test on logs)."""
    if len(base) < 2 or len(cur) < 2 or min(base + cur) <= 0:
        return None
    from scipy import stats as sp

    a, b = [math.log(v) for v in cur], [math.log(v) for v in base]
    if max(a) == min(a) and max(b) == min(b):
        return 0.0 if bad_sign * (a[0] - b[0]) > 0 else 1.0
    return float(sp.ttest_ind(a, b, equal_var=False, alternative="greater" if bad_sign > 0 else "less").pvalue)


def parse_rule(text: str) -> Rule:
    match = RULE_RE.match(text)
    if not match:
        raise HarnessError(f"bad rule {text!r}: expected METRIC:+N% or METRIC:-Npp, e.g. step_time:+10%")
    name, sign, amount, unit = match.groups()
    if name not in METRIC_ALIASES:
        raise HarnessError(f"bad rule {text!r}: unknown metric {name!r}; known: {', '.join(METRIC_ALIASES)}")
    if unit == "pp" and name != "accuracy":
        raise HarnessError(f"bad rule {text!r}: points (pp) apply to accuracy only; use % for {name}")
    return Rule(text.strip(), METRIC_ALIASES[name], 1 if sign == "+" else -1, float(amount), unit)


def _values(s: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if s is None else {"mean": s["mean"], "std": s["std"], "n": s["n"]}


def env_differences(current: dict[str, Any], baseline: dict[str, Any]) -> list[str]:
    out = []
    for field in ("device", "cpu", "gpu", "tinygrad", "tinygrad_env"):
        a = sorted({json.dumps(m[field], sort_keys=True) for m in baseline["machines"]})
        b = sorted({json.dumps(m[field], sort_keys=True) for m in current["machines"]})
        if a != b:
            out.append(f"{field}: baseline {', '.join(a)} vs current {', '.join(b)}")
    return out


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


def current_problems(current: dict[str, Any]) -> list[str]:
    """What fails a summary on its own, baseline or not: missed targets and failed runs."""
    problems = []
    for c in current["configs"]:
        if c["assert_target"] and c["targets_met"] < len(c["seeds"]):
            met = f"{c['targets_met']} of {len(c['seeds'])} seed(s)"
            problems.append(f"{c['name']}: target {c['target']:g}% met by {met}")
        problems += [f"{c['name']}: {len(c['failures'])} run(s) failed"] if c["failures"] else []
    return problems


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


def judge(
    config: str, base: dict[str, Any], cur: dict[str, Any], rules: list[Rule]
) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """One config's rows under every rule, from each side's metric statistics: (rows, problems, untested)."""
    rows, problems, untested = [], [], []
    for rule in rules:
        b, c = base.get(rule.metric), cur.get(rule.metric)
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
            problems.append(f"{config} {rule.metric}: {reason}")
        elif verdict == "info":
            untested.append(f"{config} {rule.metric} not tested: {reason}")
    return rows, problems, untested


def compare(
    current: dict[str, Any],
    baseline: dict[str, Any],
    rules: list[Rule],
    *,
    current_path: str,
    baseline_path: str,
    strict_env: bool = False,
) -> dict[str, Any]:
    """The comparison document (validated against comparison.schema.json)."""
    if current["suite"] != baseline["suite"]:
        raise HarnessError(
            f"{baseline_path}: baseline is for suite {baseline['suite']!r}, "
            f"current results are for {current['suite']!r}"
        )
    env_diff = env_differences(current, baseline)
    if env_diff and strict_env:
        raise HarnessError("environment differs from the baseline (--strict-env): " + "; ".join(env_diff))
    pairs = match_configs(current, baseline)
    rows, problems, untested = [], [], []
    for cur, base in pairs:
        r, p, u = judge(cur["name"], base["metrics"], cur["metrics"], rules)
        rows, problems, untested = rows + r, problems + p, untested + u
    problems += current_problems(current)
    doc = {
        "schema_version": schema.SCHEMA_VERSION,
        "kind": "comparison",
        "suite": current["suite"],
        "created_at": results.utc_now(),
        "current": {"path": current_path, "machines": current["machines"]},
        "baseline": {"path": baseline_path, "machines": baseline["machines"]},
        "rules": [r.text for r in rules],
        "env_differences": env_diff,
        "warnings": seed_differences(pairs) + untested,
        "rows": rows,
        "problems": problems,
        "verdict": "regression" if problems else "pass",
    }
    schema.check(doc, "comparison")
    return doc


def describe_values(v: dict[str, Any] | None, metric: str) -> str:
    if v is None:
        return "-"
    if metric == "accuracy":
        return f"{v['mean']:.2f} ± {v['std']:.2f}% (n={v['n']})"
    scale, unit = (1e3, " ms") if metric.startswith("step_time") else (1, "")
    return f"{_number(v['mean'] * scale, 3)} ± {_number(v['std'] * scale, 2)}{unit} (n={v['n']})"


def _number(x: float, digits: int) -> str:
    """`digits` significant digits without scientific notation: 1431 ms, not 1.43e+03."""
    return f"{x:.0f}" if abs(x) >= 10 ** (digits - 1) else f"{x:.{digits}g}"


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
            "-" if r["delta_pct"] is None else f"{r['delta_pct']:+.1f}%",
            r["verdict"].upper(),
            r["reason"],
        )
        for r in doc["rows"]
    ]
    lines = []
    verdict = "PASS" if doc["verdict"] == "pass" else "REGRESSION"
    if fmt == "markdown":
        lines += [f"### mnist-bench compare: `{doc['suite']}`: **{verdict}**", ""]
        lines += [f"> :warning: **environment differs**: {d}" for d in doc["env_differences"]]
        lines += [f"> :warning: {w}" for w in doc.get("warnings", [])]
        lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
        lines += [""] + [f"- :x: {p}" for p in doc["problems"]]
        return "\n".join(lines)
    lines += [f"WARNING: environment differs from the baseline: {d}" for d in doc["env_differences"]]
    lines += [f"WARNING: {w}" for w in doc.get("warnings", [])]
    widths = [max(len(str(x[i])) for x in [header, *rows]) for i in range(len(header))]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    lines += [f"FAIL {p}" for p in doc["problems"]]
    lines.append(f"verdict: {verdict}")
    return "\n".join(lines)
