"""The one rules engine: every verdict of the harness (a comparison with a baseline, the cost gate, the
same-runner A/B, the report's accuracy differences) is a `Rule` checked over statistics of a registered
metric (harness.base.metrics).

A rule such as `accuracy:-0.3pp` or `step_time_s:+10%` names a metric, the bad direction and a minimum
effect. A change is a regression only when it exceeds that effect AND the noise between seeds:
for points (pp) the drop must exceed max(rule, 2 x the standard error of the difference of means);
for percentages a one-sided Welch t-test on log values over repeats must give p < alpha; a deterministic
count (Metric.exact) is compared exactly. With a single value on each side there is no noise to test
against: the row is a plain difference (`info`). A verdict is one of VERDICTS.

`resolve` makes the rules of a command: the given ones replace the defaults of their metrics, and the
other defaults still apply (`only` drops them).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.base import inputs, tdist
from harness.base.errors import HarnessError
from harness.base.metrics import METRICS, Metric

ALPHA = 0.05
NOISE_Z = 2.0


@dataclass(frozen=True)
class Rule:
    text: str
    metric: str  # a registered metric (harness.base.metrics)
    bad_sign: int  # +1: an increase is bad, -1: a decrease is bad
    amount: float
    unit: str  # the rule's kind, a key of RULE_KINDS: "pp" (absolute points) or "%" (relative)

    def check(self, base: dict[str, Any] | None, cur: dict[str, Any] | None) -> tuple[str, str, float | None]:
        """(verdict, reason, p-value) for one config."""
        if base is None or cur is None:
            side = "baseline" if base is None else "current"
            return "info", f"no {self.metric} values in the {side}", None
        if self.unit == "%" and METRICS[self.metric].exact:
            return _check_exact(self, base, cur)
        return RULE_KINDS[self.unit](self, base, cur)


def _check_points(rule: Rule, base: dict[str, Any], cur: dict[str, Any]) -> tuple[str, str, float | None]:
    """Worse by more than the rule's points AND by more than twice the seed noise of the difference."""
    worse = rule.bad_sign * (cur["mean"] - base["mean"])
    if base["n"] < 2 and cur["n"] < 2:
        return "info", f"{cur['mean'] - base['mean']:+.2f} pp, {PLAIN} (one seed on each side)", None
    noise = seed_noise(base, cur)
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
    if p_worse is None and len(base["values"]) < 2 and len(cur["values"]) < 2:
        return "info", f"{worse_pct:+.1f}% worse, {PLAIN} (one run on each side)", None
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
    worse_pct = rule.bad_sign * 100 * (new - old) / old if old else math.inf
    change = f"{old:,.15g} -> {new:,.15g} ({100 * (new - old) / old if old else math.inf:+.3g}%)"
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
DEFAULT_RULES = tuple(f"{m.name}:{m.default_rule}" for m in METRICS.values() if m.default_rule)
VERDICTS = ("pass", "improvement", "regression", "info")  # info: not tested (no values, too few repeats)
PLAIN = "a plain difference: no noise to test it against"


def resolve(
    texts: list[str] | tuple[str, ...], defaults: tuple[str, ...] = DEFAULT_RULES, *, only: bool = False
) -> list[Rule]:
    """The rules a command checks: each given rule replaces the default rule of its metric (in its place),
    the other defaults still apply, and rules for metrics without a default follow. `only`: the given
    rules alone."""
    given = list(dict.fromkeys(parse_rule(t) for t in texts))
    if only:
        if not given:
            raise HarnessError("--only-rules needs at least one --rule")
        return given
    out: list[Rule] = []
    for default in map(parse_rule, defaults):
        out += [r for r in given if r.metric == default.metric] or [default]
    return list(dict.fromkeys([*out, *given]))


def seed_noise(base: dict[str, Any], cur: dict[str, Any]) -> float:
    """The smallest difference of means that stands out of the seed noise: NOISE_Z standard errors."""
    return NOISE_Z * math.sqrt(_seed_var(base, cur) / base["n"] + _seed_var(cur, base) / cur["n"])


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
        raise HarnessError(f"bad rule {text!r}: expected METRIC:+N% or METRIC:-Npp, e.g. step_time_s:+10%")
    name, sign, amount, kind = match.groups()
    if name not in METRICS:
        close = difflib.get_close_matches(name, METRICS, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise HarnessError(f"bad rule {text!r}: unknown metric {name!r}; {hint}known: {', '.join(METRICS)}")
    metric = METRICS[name]
    if kind not in metric.rule_kinds:
        takers = ", ".join(m.name for m in METRICS.values() if kind in m.rule_kinds)
        raise HarnessError(
            f"bad rule {text!r}: {KIND_WORDS[kind]} apply to {takers} only; use {metric.rule_kinds[0]} for {name}"
        )
    amount = inputs.finite(amount, f"bad rule {text!r}")  # digits only, but enough of them overflow to inf
    return Rule(text.strip(), metric.name, 1 if sign == "+" else -1, amount, kind)


def _values(s: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if s is None else {"mean": s["mean"], "std": s["std"], "n": s["n"]}


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
        metric = METRICS[rule.metric]
        if b is None and metric.exact:
            continue  # a count the baseline did not record (made before it was): nothing to compare with
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
        elif verdict == "info" and reason != NOT_GATED and PLAIN not in reason:
            untested.append(f"{config} {rule.metric} not tested: {reason}")
    return rows, regressions, untested


NOT_GATED = "not gated: measured on other chips than the baseline"
BIT_IDENTICAL = "bit-identical: every seed's final weights equal the baseline's"
NUMERICS_CHANGED = "numerics changed: final weights differ from the baseline's"


def stat(value: float | None) -> dict[str, Any] | None:
    """One measured value as the statistics a rule reads (a deterministic count has no spread)."""
    return None if value is None else {"mean": value, "std": 0.0, "n": 1, "values": [value]}


def exact_rule(metric: Metric, tolerance_pct: float) -> Rule:
    """The cost gate's rule for a count: any rise beyond `tolerance_pct` % fails."""
    sign = "+" if metric.worse > 0 else "-"
    return Rule(f"{metric.name}:{sign}{tolerance_pct:g}%", metric.name, metric.worse, tolerance_pct, "%")
