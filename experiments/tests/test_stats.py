"""Every statistic against an independent implementation or published values.

statsmodels: two-proportion z-test, sample size (NormalIndPower), Holm. scipy: Welch's
t-test, chi-square. GrowthBook (gbstats) published test values: delta-method relative lift
and the sequential confidence sequences (packages/stats/tests/frequentist/test_tests.py).
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower, zt_ind_solve_power
from statsmodels.stats.proportion import proportion_effectsize, proportions_ztest

from experiments import stats
from experiments.stats import Group


@settings(max_examples=60, deadline=None)
@given(
    n1=st.integers(50, 50000),
    n2=st.integers(50, 50000),
    r1=st.floats(0.01, 0.99),
    r2=st.floats(0.01, 0.99),
)
def test_proportions_z_test_matches_statsmodels(n1, n2, r1, r2):
    x1, x2 = max(1, round(n1 * r1)), max(1, round(n2 * r2))
    _, expected = proportions_ztest([x2, x1], [n2, n1])
    got = stats.proportions_z_test(Group.proportion(x1, n1), Group.proportion(x2, n2))
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_welch_matches_scipy():
    rng = np.random.default_rng(3)
    for _ in range(20):
        a = rng.exponential(2.0, size=int(rng.integers(20, 3000)))
        b = rng.exponential(2.2, size=int(rng.integers(20, 3000)))
        expected = sps.ttest_ind(b, a, equal_var=False).pvalue
        ga = Group.from_sums(len(a), a.sum(), (a * a).sum())
        gb = Group.from_sums(len(b), b.sum(), (b * b).sum())
        assert stats.welch_t_test(ga, gb) == pytest.approx(expected, rel=1e-7)


def test_srm_matches_scipy_chisquare():
    observed = [5120, 4880, 2010]
    weights = [0.4, 0.4, 0.2]
    total = sum(observed)
    expected = sps.chisquare(observed, [total * w for w in weights]).pvalue
    assert stats.srm_p_value(observed, weights) == pytest.approx(expected, rel=1e-10)
    assert stats.srm_p_value([5000, 4400], [0.5, 0.5]) < stats.SRM_THRESHOLD


def test_holm_matches_statsmodels():
    rng = np.random.default_rng(8)
    cases = [[0.01, 0.04, 0.03, 0.005], [0.5], [0.01, 0.01, 0.2]]
    cases += [list(rng.uniform(0, 0.1, size=int(rng.integers(2, 12)))) for _ in range(3)]
    for p_values in cases:
        expected = multipletests(p_values, method="holm")[1]
        assert stats.holm(p_values) == pytest.approx(list(expected), abs=1e-12)


@pytest.mark.parametrize("baseline", [0.02, 0.1, 0.35])
@pytest.mark.parametrize("mde", [0.05, 0.2])
def test_sample_size_for_conversions_matches_statsmodels(baseline, mde):
    effect = proportion_effectsize(baseline * (1 + mde), baseline)
    expected = NormalIndPower().solve_power(effect_size=effect, alpha=0.05, power=0.8, ratio=1)
    got = stats.required_users_per_variant(kind="conversion", baseline_mean=baseline, mde=mde)
    assert got == pytest.approx(math.ceil(expected), rel=1e-3)


def test_sample_size_for_means_matches_statsmodels():
    mean, variance, mde = 12.0, 90.0, 0.05
    effect = mean * mde / math.sqrt(variance)
    expected = zt_ind_solve_power(effect_size=effect, alpha=0.01, power=0.9)
    got = stats.required_users_per_variant(
        kind="mean", baseline_mean=mean, baseline_variance=variance, mde=mde, alpha=0.01, power=0.9
    )
    assert got == pytest.approx(math.ceil(expected), rel=1e-3)


def _means(n, total, squares):
    return Group.from_sums(n, total, squares)


def test_relative_lift_and_welch_interval_match_gbstats():
    # gbstats TestTwoSidedTTest.test_two_sided_ttest (relative) and _absolute (p-value).
    control = _means(3407, 1396.87, 52377.9767)
    treatment = _means(3461, 2422.7, 134698.29)
    result = stats.compare(control, treatment, kind="mean")
    assert result.lift == pytest.approx(0.70732, abs=5e-6)
    assert result.se_relative == pytest.approx(0.37879, abs=5e-6)
    assert result.ci == pytest.approx((-0.03526, 1.44989), abs=5e-6)
    assert result.p_value == pytest.approx(0.02016, abs=5e-6)
    assert result.absolute_lift == pytest.approx(0.29)


def test_sequential_interval_for_means_matches_gbstats():
    # gbstats TestSequentialTTest.test_sequential_test_runs (tuning parameter 1000).
    control = _means(3000, 1396.87, 52377.9767)
    treatment = _means(3461, 2422.7, 134698.29)
    result = stats.compare(control, treatment, kind="mean", sequential=True, tuning=1000)
    assert result.lift == pytest.approx(0.50336, abs=5e-6)
    assert result.se_relative == pytest.approx(0.33341, abs=5e-6)
    assert result.ci == pytest.approx((-0.55844, 1.56516), abs=5e-6)
    assert result.p_value == 1


def test_sequential_interval_for_proportions_matches_gbstats():
    # gbstats TestSequentialTTest.test_sequential_test_runs_prop (default tuning 5000).
    result = stats.compare(
        Group.proportion(1396, 3000),
        Group.proportion(2422, 3461),
        kind="conversion",
        sequential=True,
    )
    assert result.lift == pytest.approx(0.50386, abs=5e-6)
    assert result.se_relative == pytest.approx(0.03386, abs=5e-6)
    assert result.ci == pytest.approx((0.40098, 0.60675), abs=5e-6)
    assert result.p_value == pytest.approx(0.0, abs=1e-5)


def test_sequential_tuning_behaves_as_gbstats_describes():
    # gbstats test_sequential_test_tuning_as_expected: tightest when tuned near the sample.
    control = _means(3000, 1396.87, 52377.9767)
    treatment = _means(3461, 2422.7, 134698.29)

    def width(tuning):
        lo, hi = stats.compare(control, treatment, kind="mean", sequential=True, tuning=tuning).ci
        return hi - lo

    assert width(10) > width(10000) > width(6461)


def test_sequential_p_value_agrees_with_its_interval():
    rng = np.random.default_rng(5)
    for _ in range(200):
        n = int(rng.integers(200, 20000))
        control = Group.proportion(int(n * 0.1), n)
        treatment = Group.proportion(int(n * rng.uniform(0.08, 0.13)), n)
        r = stats.compare(control, treatment, kind="conversion", sequential=True)
        excludes_zero = r.ci[0] > 0 or r.ci[1] < 0
        assert excludes_zero == (r.p_value < 0.05)


def test_chance_to_beat_control_is_the_normal_posterior():
    control, treatment = Group.proportion(1000, 10000), Group.proportion(1080, 10000)
    r = stats.compare(control, treatment, kind="conversion")
    assert r.chance_to_beat_control == pytest.approx(sps.norm.cdf(r.lift / r.se_relative))
    flipped = stats.compare(control, treatment, kind="conversion", decrease_is_good=True)
    assert flipped.chance_to_beat_control == pytest.approx(1 - r.chance_to_beat_control)


def _aa_false_positive_rates(*, experiments: int, hours: int, users_per_hour: int, seed: int):
    """A/A experiments (same 10% rate in both arms) monitored every hour: the share that ever
    looks significant, with the sequential test and with a naive z-test."""
    rng = np.random.default_rng(seed)
    p = 0.10
    n = np.cumsum(rng.poisson(users_per_hour, size=(2, experiments, hours)), axis=2)
    increments = np.diff(n, axis=2, prepend=0)
    x = np.cumsum(rng.binomial(increments, p), axis=2)
    nc, nt, xc, xt = n[0], n[1], x[0], x[1]
    ok = (nc > 100) & (nt > 100) & (xc > 0)
    mc, mt = xc / np.maximum(nc, 1), xt / np.maximum(nt, 1)
    var = (mt * (1 - mt)) / (np.maximum(mc, 1e-9) ** 2 * np.maximum(nt, 1)) + (
        mc * (1 - mc) * mt**2
    ) / (np.maximum(mc, 1e-9) ** 4 * np.maximum(nc, 1))
    lift = (mt - mc) / np.maximum(mc, 1e-9)
    seq_p = stats.sequential_p_value(
        estimate=lift, variance=np.maximum(var, 1e-12), n=nc + nt, alpha=0.05, tuning=5000
    )
    pooled = (xc + xt) / np.maximum(nc + nt, 1)
    se = np.sqrt(pooled * (1 - pooled) * (1 / np.maximum(nc, 1) + 1 / np.maximum(nt, 1)))
    naive_p = 2 * sps.norm.sf(np.abs(mt - mc) / np.maximum(se, 1e-12))
    sequential_fpr = ((seq_p < 0.05) & ok).any(axis=1).mean()
    naive_fpr = ((naive_p < 0.05) & ok).any(axis=1).mean()
    return sequential_fpr, naive_fpr


def test_aa_simulation_sequential_keeps_false_positives_near_alpha():
    """2,000 A/A experiments, looked at every hour for 14 days: peeking with a fixed-horizon
    z-test finds a 'winner' far more often than 5%; the sequential test stays at or below
    alpha (plus Monte Carlo error: the standard error of 2,000 trials at 5% is 0.5%)."""
    sequential_fpr, naive_fpr = _aa_false_positive_rates(
        experiments=2000, hours=14 * 24, users_per_hour=30, seed=11
    )
    assert sequential_fpr <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / 2000)
    assert naive_fpr > 0.15
