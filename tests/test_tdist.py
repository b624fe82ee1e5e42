"""harness.base.tdist (Student's t and Welch's test without scipy) against values scipy 1.17.1 gave."""

from __future__ import annotations

import math

import pytest

from harness.base import stats, tdist

# scipy.stats.t.ppf(0.975, df)
QUANTILES_975 = {
    1: 12.706204736174694,
    2: 4.302652729749462,
    3: 3.1824463052837078,
    5: 2.5705818356363146,
    9: 2.262157162798205,
    10: 2.228138851986274,
    30: 2.0422724563012378,
    100: 1.9839715185235518,
    1000: 1.9623390808264083,
    2.5: 3.5746548420036817,
    7.3: 2.345066736547703,
}

# 2 * scipy.stats.t.sf(|t|, df)
TWO_SIDED = [
    (0.5, 3, 0.651447964848151),
    (2.0, 4.7, 0.10557218220343964),
    (-1.3, 12.2, 0.21762593047180184),
    (8.0, 2.1, 0.013226062530955556),
    (40.0, 5, 1.8411962171772954e-07),
    (1e-3, 1.0, 0.9993633804398159),
    (3.0, 200.0, 0.003043047113905905),
]

# scipy.stats.ttest_ind(a, b, equal_var=False, alternative=...).pvalue
WELCH = [
    ([1.0, 2.0, 3.0], [2.5, 3.5, 4.5, 5.0], (0.06928214215368987, 0.9653589289231551, 0.034641071076844936)),
    ([10.1, 10.3, 9.9, 10.0], [10.6, 10.9, 10.7], (0.0035737648480865026, 0.9982131175759568, 0.0017868824240432513)),
    (
        [0.91, 0.93, 0.90],
        [0.905, 0.95, 0.97, 0.96, 0.99],
        (0.047030960951493776, 0.9764845195242531, 0.023515480475746888),
    ),
    ([5, 5.1], [9, 30], (0.40003801170934883, 0.7999809941453255, 0.20001900585467441)),
]


@pytest.mark.parametrize("df,expected", QUANTILES_975.items())
def test_quantile_matches_scipy(df, expected):
    assert tdist.ppf(0.975, df) == pytest.approx(expected, rel=1e-12)
    assert tdist.ppf(0.025, df) == pytest.approx(-expected, rel=1e-12)


@pytest.mark.parametrize("t,df,expected", TWO_SIDED)
def test_two_sided_p_matches_scipy(t, df, expected):
    assert tdist.two_sided_p(t, df) == pytest.approx(expected, rel=1e-12)
    assert tdist.sf(abs(t), df) == pytest.approx(expected / 2, rel=1e-12)
    assert tdist.cdf(-abs(t), df) == pytest.approx(expected / 2, rel=1e-12)


@pytest.mark.parametrize("a,b,expected", WELCH)
def test_welch_matches_scipy(a, b, expected):
    got = tuple(tdist.welch_p(a, b, alt) for alt in ("two-sided", "greater", "less"))
    assert got == pytest.approx(expected, rel=1e-12)


def test_edges():
    assert tdist.two_sided_p(0.0, 4) == 1.0
    assert tdist.two_sided_p(math.inf, 4) == 0.0
    assert math.isnan(tdist.two_sided_p(math.nan, 4))
    assert tdist.ppf(0.5, 3) == 0.0
    with pytest.raises(ValueError):
        tdist.ppf(1.0, 3)
    with pytest.raises(ValueError):
        tdist.welch_p([1, 2], [3, 4], "sideways")


def test_stats_uses_it():
    assert stats.t_critical(4) == pytest.approx(2.7764451051977934, rel=1e-12)
    assert stats.t_critical(0) == math.inf
    assert tdist.welch_p([1.0, 2.0, 3.0], [2.5, 3.5, 4.5, 5.0]) == pytest.approx(0.06928214215368987, rel=1e-12)
