"""The gate's numbers as github-action-benchmark input (`customSmallerIsBetter` JSON), for a history chart.

Our own JSON (the suite summary, the cost document) stays the source of truth; this is a lossy view of
it: one entry per config and charted metric (the registry's `history` flag), every value oriented so
that smaller is better (accuracy becomes the test error in %), named `<suite>/<config> <metric>` with
the registry's metric name, so that each gets its own chart over commits.
"""

from __future__ import annotations

from typing import Any

from harness.base.metrics import METRICS, Metric, format_stat

HISTORY = tuple(m for m in METRICS.values() if m.history)


def _unit(m: Metric) -> str:
    return "% error" if m.worse < 0 and m.unit == "%" else m.unit.strip()


def from_summary(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for config in doc["configs"]:
        for m in HISTORY:
            stat = config["metrics"].get(m.name)
            if stat is None:
                continue
            out.append(
                {
                    "name": f"{doc['suite']}/{config['name']} {m.name}",
                    "unit": _unit(m),
                    "value": round(m.smaller_is_better(stat["mean"]), 6),
                    "extra": f"{m.label} {format_stat(stat, m.name)}; seeds {config['seeds']}",
                }
            )
    return out


def from_cost(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "name": f"cost/{p['model']} {m.name}",
            "unit": _unit(m),
            "value": m.smaller_is_better(m.of_profile(p)),
            "extra": f"key {doc['key']}",
        }
        for p in doc["profiles"]
        for m in HISTORY
        if m.cost and m.of_profile(p) is not None
    ]


def entries(summary_doc: dict[str, Any] | None, cost_doc: dict[str, Any] | None) -> list[dict[str, Any]]:
    return (from_summary(summary_doc) if summary_doc else []) + (from_cost(cost_doc) if cost_doc else [])
