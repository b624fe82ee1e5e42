"""Summaries over repeats and noise-aware comparisons (significance over seeds, never one number vs one)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from harness.base import tdist


def describe(values: list[float], positive: bool = False) -> dict[str, Any] | None:
    """n, mean, std (n-1), min, max, a 95% interval, and the values themselves.

    The interval is the t-interval for the mean; for a `positive` quantity (a time, a rate, a count) it is
    the t-interval of the logs mapped back (an interval for the geometric mean), which can never go below
    zero: compile times of 2, 3 and 40 s give [0.11, 352] s, not the t-interval [-38.8, 68.8] s."""
    vals = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return None
    arr = np.asarray(vals)
    n, mean = len(vals), float(arr.mean())
    std = float(arr.std(ddof=1)) if n > 1 else 0.0
    return {
        "n": n,
        "mean": mean,
        "std": std,
        "min": float(arr.min()),
        "max": float(arr.max()),
        "ci95": interval(arr, positive),
        "values": vals,
    }


def interval(arr: np.ndarray, positive: bool = False) -> list[float]:
    n = len(arr)
    if positive and (arr > 0).all():
        logs = np.log(arr)
        centre = float(logs.mean())
        half = t_critical(n - 1) * float(logs.std(ddof=1)) / math.sqrt(n) if n > 1 else 0.0
        return [math.exp(centre - half), math.exp(centre + half)]
    mean = float(arr.mean())
    half = t_critical(n - 1) * float(arr.std(ddof=1)) / math.sqrt(n) if n > 1 else 0.0
    low = mean - half
    return [max(low, 0.0) if positive else low, mean + half]


def t_critical(df: int, confidence: float = 0.95) -> float:
    return tdist.ppf(0.5 + confidence / 2, df) if df > 0 else math.inf


def percentiles(values: list[float]) -> dict[str, float | int] | None:
    """Median, p10, p90, mean, min, max and n of one run's per-step times (None when there are none)."""
    if not values:
        return None
    arr = np.asarray(values)
    return {
        "median": float(np.median(arr)),
        "p10": float(np.percentile(arr, 10)),
        "p90": float(np.percentile(arr, 90)),
        "mean": float(arr.mean()),
        "min": float(arr.min()),
        "max": float(arr.max()),
        "n": len(values),
    }
