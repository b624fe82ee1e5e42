"""The gate's numbers as github-action-benchmark input (`customSmallerIsBetter` JSON), for a history chart.

Our own JSON (the suite summary, the cost document) stays the source of truth; this is a lossy view of
it: one entry per config and metric, every value oriented so that smaller is better (accuracy becomes
the test error in %), named `<suite>/<config> <metric>` so that each gets its own chart over commits.
"""

from __future__ import annotations

from typing import Any

from harness import summary

# summary metric -> (name in the chart, unit, value from the metric's mean); only smaller-is-better views
SUMMARY_METRICS = {
    "accuracy": ("test error", "%", lambda mean: 100.0 - mean),
    "step_time_p10_s": ("step time p10", "ms", lambda mean: mean * 1e3),
    "step_time_s": ("step time median", "ms", lambda mean: mean * 1e3),
    "time_to_target_s": ("time to target", "s", lambda mean: mean),
    "wall_s": ("wall time", "s", lambda mean: mean),
}
COST_METRICS = (("train_step", "flops", "FLOP"), ("train_step", "bytes", "B"), ("train_step", "kernels", "kernels"))


def from_summary(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for config in doc["configs"]:
        for metric, (label, unit, value) in SUMMARY_METRICS.items():
            stat = config["metrics"].get(metric)
            if stat is None:
                continue
            spread = summary.format_stat(stat, metric)
            out.append(
                {
                    "name": f"{doc['suite']}/{config['name']} {label}",
                    "unit": unit,
                    "value": round(value(stat["mean"]), 6),
                    "extra": f"{summary.METRICS[metric].label} {spread}; seeds {config['seeds']}",
                }
            )
    return out


def from_cost(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "name": f"cost/{p['model']} {section.replace('_', ' ')} {metric}",
            "unit": unit,
            "value": p[section][metric],
            "extra": f"key {doc['key']}",
        }
        for p in doc["profiles"]
        for section, metric, unit in COST_METRICS
    ]


def entries(summary_doc: dict[str, Any] | None, cost_doc: dict[str, Any] | None) -> list[dict[str, Any]]:
    return (from_summary(summary_doc) if summary_doc else []) + (from_cost(cost_doc) if cost_doc else [])
