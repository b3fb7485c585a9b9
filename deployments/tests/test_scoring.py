"""The statistical judge against scipy's Mann-Whitney U on generated samples, then its
classification, score and decision."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from deployments.scoring import (
    CONTINUE,
    DECREASE,
    HIGH,
    INCREASE,
    LOW,
    NODATA,
    PASS,
    PAUSE,
    ROLLBACK,
    classify,
    mann_whitney,
    mean_ratio,
    score,
)

# Few distinct values so ties are common: the tie correction is where hand-written tests go wrong.
samples = st.lists(
    st.one_of(st.integers(0, 6).map(float), st.floats(0, 100, allow_nan=False)),
    min_size=1,
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(canary=samples, stable=samples)
def test_mann_whitney_matches_scipy(canary, stable):
    ours = mann_whitney(canary, stable)
    ref = stats.mannwhitneyu(
        canary, stable, alternative="two-sided", method="asymptotic", use_continuity=True
    )
    assert ours.u_canary == pytest.approx(ref.statistic)
    if np.isnan(ref.pvalue):  # scipy: every value equal
        assert ours.p_value == 1.0
    else:
        assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-12)


def test_mean_ratio_is_the_ratio_of_means():
    assert mean_ratio([2, 4], [1, 2]) == pytest.approx(np.mean([2, 4]) / np.mean([1, 2]))
    assert mean_ratio([0, 0], [0, 0]) == 1.0
    assert mean_ratio([1], [0]) == float("inf")


rng = np.random.default_rng(25)
BASE = rng.normal(100, 5, 60)


@pytest.mark.parametrize(
    "shift,direction,label,failed",
    [
        (1.0, INCREASE, PASS, False),  # no difference
        (1.2, INCREASE, HIGH, True),  # 20 % up, bad way
        (1.2, DECREASE, HIGH, False),  # up is fine for a metric that is bad when it drops
        (0.8, DECREASE, LOW, True),
        (0.8, INCREASE, LOW, False),
        (0.8, "either", LOW, True),
    ],
)
def test_classification_on_generated_samples(shift, direction, label, failed):
    # A 5 % tolerance either way: unshifted noise may differ significantly, never by that much.
    canary = rng.normal(100 * shift, 5, 60)
    result = classify(
        "latency", canary, BASE, direction=direction, allowed_increase=1.05, allowed_decrease=0.95
    )
    assert (result.classification, result.failed) == (label, failed)
    p = stats.mannwhitneyu(canary, BASE, method="asymptotic").pvalue
    assert result.p_value == pytest.approx(p)
    assert result.effect_size == pytest.approx(canary.mean() / BASE.mean())


def test_a_significant_difference_inside_the_tolerance_passes():
    canary = BASE * 1.05  # significant (same noise, shifted) but within +10 %
    assert stats.mannwhitneyu(canary, BASE).pvalue < 0.05
    assert classify("x", canary, BASE, allowed_increase=1.1).classification == PASS
    assert classify("x", canary, BASE, allowed_increase=1.0).classification == HIGH


def test_too_few_samples_is_nodata():
    result = classify("x", [1, 2], [1, 2, 3])
    assert result.classification == NODATA and not result.failed
    assert "2 canary and 3 stable" in result.why


def _result(name, failed, *, weight=1.0, critical=False, dry_run=False, nodata=False):
    canary = [] if nodata else (BASE * 1.5 if failed else BASE)
    return classify(name, canary, BASE, weight=weight, critical=critical, dry_run=dry_run)


def test_score_is_the_weighted_share_of_passing_metrics_with_data():
    results = [
        _result("a", False, weight=3),
        _result("b", True, weight=1),
        _result("c", False, nodata=True, weight=5),  # no data: not counted
        _result("d", True, dry_run=True, weight=9),  # dry run: shown, never counted
    ]
    s = score(results, pass_score=95, marginal_score=70)
    assert s.score == pytest.approx(100 * 3 / 4)
    assert s.decision == PAUSE
    assert [why.split(" ")[0] for why in s.reasons] == ["b"]
    assert score(results, pass_score=70, marginal_score=50).decision == CONTINUE
    assert score(results, pass_score=90, marginal_score=80).decision == ROLLBACK


def test_a_failing_critical_metric_scores_zero():
    s = score([_result("a", False, weight=10), _result("b", True, critical=True)])
    assert s.score == 0 and s.decision == ROLLBACK


def test_no_deciding_data_pauses():
    s = score([_result("a", False, nodata=True), _result("b", True, dry_run=True)])
    assert s.score is None and s.decision == PAUSE
