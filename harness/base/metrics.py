"""The metric registry: every number the harness summarises, compares, gates, charts and tabulates.

A metric has one name, from the summary to a rule (`step_time_s:+10%`), a comparison row, a cost
gate row, a history entry and the PR comment. Adding one is an entry in `_REGISTRY` plus its property
in schemas/summary.schema.json (a test keeps the two in step); every reader takes it from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Metric:
    name: str  # key under a summary config's `metrics`, a rule's metric, a row's `metric`
    read: Callable[[dict[str, Any]], float | None]  # its value in one run record (None: not measured)
    label: str  # words for a table header
    unit: str = ""  # shown after the value, once scaled
    scale: float = 1.0  # shown value = stored value x scale
    worse: int = 1  # +1: a higher value is worse; -1: a lower one
    rule_kinds: tuple[str, ...] = ("%",)  # the kinds of rule it accepts (rules.KINDS)
    default_rule: str | None = None  # checked as `name:default_rule` unless a rule for it is given
    decimals: int | None = None  # fixed decimals when shown; None: 3 significant digits
    exact: bool = False  # a deterministic count: a % rule compares it exactly, without a noise test
    positive: bool = True  # never below zero: its 95% interval is computed on the logs (stats.describe)
    clock: bool = False  # measured by a clock: comparable only between runs on the same chip
    cost: tuple[str, str] | None = None  # where a cost profile holds it (section, field): the cost gate's
    table: bool = False  # a column of the summary table printed after a suite run
    history: bool = False  # charted over commits on main (history entries)

    def values(self, records: list[dict[str, Any]]) -> list[float | None]:
        return [self.read(r) for r in records]

    def of_profile(self, profile: dict[str, Any]) -> float | None:
        """Its value in a cost profile (a `cost` document's, or a run record's `cost` object)."""
        if self.cost is None:
            return None
        node: Any = profile
        for key in self.cost:
            node = node.get(key) if isinstance(node, dict) else None
        return node

    def smaller_is_better(self, mean: float) -> float:
        """The value a history chart plots, oriented so that lower is better: a percentage where higher is
        better becomes its complement (accuracy -> test error), any other metric is shown in its display unit."""
        if self.worse < 0 and self.unit == "%":
            return 100.0 - mean
        return mean * self.scale


def _timing(name: str) -> Callable[[dict[str, Any]], float | None]:
    return lambda r: r["timings"][name]


def _step_time(field: str) -> Callable[[dict[str, Any]], float | None]:
    return lambda r: (r["timings"]["step_time_s"] or {}).get(field)


def _metric(name: str) -> Callable[[dict[str, Any]], float | None]:
    return lambda r: r["metrics"].get(name)


def _in_cost(section: str, field: str) -> Callable[[dict[str, Any]], float | None]:
    """A value in the record's `cost` (tinygrad's own counts of the captured steps); None where absent."""
    return lambda r: ((r.get("cost") or {}).get(section) or {}).get(field)


def _count(name: str, section: str, field: str, label: str, unit: str = "", scale: float = 1.0, **kw: Any) -> Metric:
    """A deterministic count from tinygrad's estimates, in a record's `cost` and a cost profile alike;
    gated by default: any rise fails."""
    kw = {"exact": True, "default_rule": "+0%", **kw}
    return Metric(name, _in_cost(section, field), label, unit, scale, cost=(section, field), **kw)


_REGISTRY = (
    Metric(
        "accuracy",
        _metric("accuracy"),
        "accuracy",
        "%",
        worse=-1,
        rule_kinds=("pp", "%"),
        default_rule="-0.3pp",
        decimals=2,
        positive=False,
        table=True,
        history=True,
    ),
    Metric("final_loss", _metric("final_loss"), "final loss"),
    Metric("steps_to_target", _metric("steps_to_target"), "steps to target", " steps"),
    Metric("step_time_s", _step_time("median"), "step time", " ms", 1e3, clock=True, table=True, history=True),
    # the fastest tenth of the steps: what the machine can do, least moved by other processes' bursts
    Metric(
        "step_time_p10_s",
        _step_time("p10"),
        "step time p10",
        " ms",
        1e3,
        default_rule="+10%",
        clock=True,
        history=True,
    ),
    # training only (steps, their compile included); the MLPerf reading adds every evaluation up to the target
    Metric(
        "time_to_target_s",
        _metric("time_to_target_s"),
        "time to target (training)",
        " s",
        clock=True,
        table=True,
        history=True,
    ),
    Metric(
        "time_to_target_with_eval_s",
        _metric("time_to_target_with_eval_s"),
        "time to target (with eval, MLPerf)",
        " s",
        clock=True,
    ),
    Metric("samples_per_s", _timing("samples_per_s"), "samples/s", " samples/s", worse=-1, clock=True),
    Metric("compile_s", _timing("compile_s"), "compile time", " s", clock=True),
    Metric("train_s", _timing("train_s"), "train time", " s", clock=True),
    Metric("eval_s", _timing("eval_s"), "eval time", " s", clock=True),
    Metric("wall_s", _timing("wall_s"), "wall time", " s", clock=True, table=True, history=True),
    # what tinygrad says the jitted step does: the same on every seed, process and machine of one key
    _count("kernels_per_step", "train_step", "kernels", "kernels/step", history=True),
    _count("flops_per_step", "train_step", "flops", "FLOP/step", " GFLOP", 1e-9, history=True),
    _count("bytes_per_step", "train_step", "bytes", "bytes/step", " MB", 1e-6, history=True),
    _count("eval_kernels", "eval_pass", "kernels", "kernels/eval"),
    _count("eval_flops", "eval_pass", "flops", "FLOP/eval", " GFLOP", 1e-9),
    _count("eval_bytes", "eval_pass", "bytes", "bytes/eval", " MB", 1e-6),
    _count("buffer_bytes", "memory", "jit_buffers_bytes", "buffers", " MB", 1e-6),
    _count("kernels_compiled", "compile", "kernels_compiled", "kernels compiled"),
    Metric("intensity", _in_cost("train_step", "intensity"), "FLOP/byte", exact=True, worse=-1),
    Metric("gflops_per_s", _in_cost("derived", "gflops_per_s"), "achieved", " GFLOP/s", worse=-1, clock=True),
    Metric("gb_per_s", _in_cost("derived", "gb_per_s"), "achieved", " GB/s", worse=-1, clock=True),
)
METRICS: dict[str, Metric] = {m.name: m for m in _REGISTRY}
COUNTS: tuple[Metric, ...] = tuple(m for m in _REGISTRY if m.cost and m.default_rule)  # what the cost gate checks


def metric_of(name: str) -> Metric:
    """The registry's entry for a metric named in a document; a name this version does not know (a newer
    harness's document) gets a plain stand-in that shows the values as stored, under the name itself."""
    return METRICS.get(name) or Metric(name, lambda r: None, name)


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
    count = f" (n={s['n']})" if n else ""
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
