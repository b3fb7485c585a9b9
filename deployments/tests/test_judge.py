"""The judgement: limits, comparison with stable, failure on any metric, no data never passes."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deployments.judge import FAIL, NO_DATA, PASS, judge
from deployments.metrics.base import Reading
from deployments.models import default_analysis


def reading(**kw):
    base = {
        "request_rate": 50,
        "error_rate": 0.5,
        "p99_ms": 150,
        "cpu_percent": 30,
        "memory_percent": 40,
    }
    return Reading(**{**base, **kw})


@pytest.fixture
def analysis(settings):
    return default_analysis()


def test_healthy_canary_passes(analysis):
    assert judge(analysis, reading(), reading())["verdict"] == PASS


@pytest.mark.parametrize(
    "canary,stable,why",
    [
        ({"error_rate": 5.01}, {}, "error_rate 5.01 > limit 5"),
        ({"error_rate": 2.0}, {"error_rate": 0.5}, "> stable 0.5 + tolerance"),
        ({"p99_ms": 900}, {}, "p99_ms 900 > limit 800"),
        ({"p99_ms": 200}, {"p99_ms": 150}, "> stable 150 + tolerance (187.5)"),
        ({"cpu_percent": 95}, {}, "cpu_percent 95 > limit 90"),
        ({"memory_percent": 91}, {}, "memory_percent 91 > limit 90"),
    ],
)
def test_each_limit_fails_with_its_reason(analysis, canary, stable, why):
    verdict = judge(analysis, reading(**canary), reading(**stable))
    assert verdict["verdict"] == FAIL
    assert any(why in r for r in verdict["reasons"]), verdict["reasons"]


def test_missing_canary_metric_is_no_data_even_if_others_fail(analysis):
    verdict = judge(analysis, reading(p99_ms=None), reading())
    assert verdict["verdict"] == NO_DATA
    assert judge(analysis, reading(p99_ms=None, error_rate=50), reading())["verdict"] == FAIL


def test_comparison_needs_stable_unless_stable_serves_nothing(analysis):
    assert judge(analysis, reading(), reading(error_rate=None))["verdict"] == NO_DATA
    assert judge(analysis, reading(), Reading(), stable_serving=False)["verdict"] == PASS
    assert judge({**analysis, "compare_to_stable": False}, reading(), Reading())["verdict"] == PASS


@given(
    err=st.floats(0, 100, allow_nan=False),
    p99=st.floats(1, 5000, allow_nan=False),
    stable_err=st.floats(0, 100, allow_nan=False),
    stable_p99=st.one_of(st.none(), st.floats(1, 5000, allow_nan=False)),
)
def test_verdict_matches_an_independent_rule(err, p99, stable_err, stable_p99):
    analysis = {
        "max_error_rate": 5.0,
        "max_p99_ms": 800.0,
        "compare_to_stable": True,
        "error_rate_tolerance": 1.0,
    }
    rest = {"cpu_percent": 30.0, "memory_percent": 40.0}
    verdict = judge(
        analysis,
        Reading(error_rate=err, p99_ms=p99, **rest),
        Reading(error_rate=stable_err, p99_ms=stable_p99, **rest),
    )
    expected_fail = (
        err > 5.0
        or err > stable_err + 1.0
        or p99 > 800.0
        or (stable_p99 is not None and p99 > stable_p99 + stable_p99 * 25.0 / 100)
    )
    # Missing data never passes: without stable's p99 the comparison is inconclusive.
    expected = FAIL if expected_fail else NO_DATA if stable_p99 is None else PASS
    assert verdict["verdict"] == expected
