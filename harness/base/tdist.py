"""Student's t distribution and Welch's t-test, in closed form (what the harness used scipy for).

The harness needs two things from the t distribution: the quantile behind a 95% interval and the
p-value of Welch's unequal-variance t-test. Both come from the regularized incomplete beta function,
    P(|T| > t) = I_x(df/2, 1/2) with x = df / (df + t^2),
evaluated with its continued fraction (Lentz's method, as in Numerical Recipes 6.4), which converges
to double precision for every df > 0. The quantile is found by bisection on that tail probability.
tests/test_tdist.py checks both against scipy's values to 1e-10 (relative).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

_EPS = 3e-16  # a few units in the last place of 1.0
_TINY = 1e-300


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b), good for x < (a + 1) / (a + b + 2)."""
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, 10_000):
        for num in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + num / c
            c = c if abs(c) > _TINY else _TINY
            h *= d * c
        if abs(d * c - 1.0) < _EPS:
            break
    return h


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for T ~ Student's t with `df` degrees of freedom."""
    if math.isnan(t):
        return math.nan
    if math.isinf(t):
        return 0.0
    return incomplete_beta(df / 2.0, 0.5, df / (df + t * t))


def sf(t: float, df: float) -> float:
    """P(T >= t): the upper tail."""
    half = two_sided_p(t, df) / 2.0
    return half if t > 0 else 1.0 - half


def cdf(t: float, df: float) -> float:
    """P(T <= t)."""
    return sf(-t, df)


def ppf(q: float, df: float) -> float:
    """The q-quantile of Student's t with `df` degrees of freedom (0 < q < 1)."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile level {q} is not in (0, 1)")
    if q == 0.5:
        return 0.0
    if q < 0.5:
        return -ppf(1.0 - q, df)
    tail = 2.0 * (1.0 - q)  # the two-sided tail probability of the answer
    lo, hi = 0.0, 1.0
    while two_sided_p(hi, df) > tail:
        lo, hi = hi, hi * 2.0
    for _ in range(200):  # bisection: the tail falls monotonically in t
        mid = (lo + hi) / 2.0
        if mid in (lo, hi):
            break
        lo, hi = (mid, hi) if two_sided_p(mid, df) > tail else (lo, mid)
    return (lo + hi) / 2.0


def welch(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Welch's t statistic of mean(a) - mean(b) and its Welch-Satterthwaite degrees of freedom.

    Both samples need 2+ values and not both a zero variance (callers handle those cases)."""
    na, nb = len(a), len(b)
    ma, mb = math.fsum(a) / na, math.fsum(b) / nb
    va = math.fsum((v - ma) ** 2 for v in a) / (na - 1) / na
    vb = math.fsum((v - mb) ** 2 for v in b) / (nb - 1) / nb
    t = (ma - mb) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va * va / (na - 1) + vb * vb / (nb - 1))
    return t, df


def welch_p(a: Sequence[float], b: Sequence[float], alternative: str = "two-sided") -> float:
    """The p-value of Welch's t-test of mean(a) vs mean(b): `two-sided`, `greater` (a > b) or `less`."""
    t, df = welch(a, b)
    if alternative == "two-sided":
        return two_sided_p(t, df)
    if alternative == "greater":
        return sf(t, df)
    if alternative == "less":
        return cdf(t, df)
    raise ValueError(f"unknown alternative {alternative!r}")
