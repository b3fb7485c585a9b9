"""Auto-conclusion by each engine: valid under hourly looks, never with a sample ratio mismatch
or a failing guardrail, and every decision explained in the audit log.

The numbers the decisions rest on are recomputed here from the raw counts, independently of
experiments/stats.py: scipy's chi-square for SRM, the delta method and a normal posterior
written out by hand, and the Bayesian risk by numerical integration (scipy.integrate.quad).
"""

import datetime as dt
import math

import pytest
from scipy import integrate
from scipy import stats as sps

from analytics.catalog import Event
from core.models import AuditEntry
from experiments import stats
from experiments.models import Experiment
from experiments.services import experiment_evaluate
from experiments.tests.factories import MetricFactory
from experiments.tests.test_services import _tickets, _traffic

pytestmark = pytest.mark.django_db


def _audit(action: str) -> list[str]:
    return list(
        AuditEntry.objects.filter(action=action).order_by("id").values_list("detail", flat=True)
    )


def _relative(control: tuple[int, int], treatment: tuple[int, int]) -> tuple[float, float]:
    """(relative lift, its delta-method variance) of two conversion rates, by hand."""
    (nc, xc), (nt, xt) = control, treatment
    pc, pt = xc / nc, xt / nt
    vc, vt = pc * (1 - pc), pt * (1 - pt)
    lift = (pt - pc) / pc
    return lift, vt / (pc**2 * nt) + vc * pt**2 / (pc**4 * nc)


def _posterior(lift: float, variance: float, prior_sd: float = 0.3) -> tuple[float, float]:
    precision = 1 / variance + 1 / prior_sd**2
    return (lift / variance) / precision, math.sqrt(1 / precision)


def _risk_of_shipping(mean: float, sd: float) -> float:
    """E[max(-lift, 0)] under N(mean, sd), integrated numerically."""
    value, _ = integrate.quad(
        lambda x: -x * sps.norm.pdf(x, mean, sd), mean - 12 * sd, min(0.0, mean + 12 * sd)
    )
    return max(value, 0.0)


@pytest.mark.parametrize("engine", ["frequentist", "bayesian"])
def test_srm_blocks_conclusion_by_either_engine_and_the_audit_says_why(
    analytics_store, running, engine
):
    experiment = running(days_ago=8, minimum_runtime_days=7, engine=engine)
    _traffic(experiment, control=(3000, 300), treatment=(2500, 500))
    experiment = experiment_evaluate(experiment_id=experiment.pk)
    result = experiment.last_results
    assert experiment.status == Experiment.Status.RUNNING and experiment.srm_flagged
    expected_p = sps.chisquare([3000, 2500], [2750, 2750]).pvalue
    assert result["srm"]["p_value"] == pytest.approx(expected_p, rel=1e-9)
    assert result["decision"]["kind"] == "srm"
    # the treatment is far better, yet the split is wrong: nothing is concluded
    assert result["conclusion_check"] == {
        "may_conclude": False,
        "reason": "sample ratio mismatch: no conclusion while the split is wrong",
    }
    (detail,) = _audit("experiment.hold")
    assert detail == (
        f"Not concluded ({engine} engine): sample ratio mismatch: no conclusion while the "
        "split is wrong."
    )
    assert not _audit("experiment.conclude")


def test_failing_guardrail_blocks_a_bayesian_win(analytics_store, running):
    guard = MetricFactory(key="tickets-b", event=Event.SUPPORT_TICKET, direction="decrease")
    experiment = running(days_ago=8, minimum_runtime_days=7, engine="bayesian")
    experiment.guardrail_metrics.set([guard])
    _traffic(experiment, control=(3000, 300), treatment=(3000, 450))
    _tickets(experiment, treatment=400, control=300)
    experiment = experiment_evaluate(experiment_id=experiment.pk)
    result = experiment.last_results
    assert experiment.status == Experiment.Status.RUNNING and experiment.winner is None
    assert result["decision"]["kind"] == "winner"  # the primary metric alone would ship...
    assert result["decision"]["failing_guardrails"] == ["tickets-b (treatment)"]
    guard_row = next(m for m in result["metrics"] if m["role"] == "guardrail")
    comparison = guard_row["variants"][1]["comparison"]
    # ...but tickets rose: independently, P(lift > 0) is far above 1 - alpha (decrease is good)
    mean, sd = _posterior(*_relative((3000, 300), (3000, 400)))
    assert comparison["chance_to_win"] == pytest.approx(sps.norm.cdf(-mean / sd), abs=1e-9)
    assert comparison["chance_to_win"] <= experiment.alpha
    (detail,) = _audit("experiment.hold")
    assert detail.startswith("Not concluded (bayesian engine): a guardrail is failing")
    assert "tickets-b (treatment)" in detail and "a person decides" in detail


@pytest.mark.parametrize(
    ("risk_threshold", "concludes"),
    [(0.0025, True), (0.00001, False)],  # the same data: the risk rule alone decides
)
def test_bayesian_rule_is_on_risk_not_only_chance_to_win(
    analytics_store, running, risk_threshold, concludes
):
    experiment = running(
        days_ago=8, minimum_runtime_days=7, engine="bayesian", risk_threshold=risk_threshold
    )
    _traffic(experiment, control=(3000, 300), treatment=(3000, 372))
    experiment = experiment_evaluate(experiment_id=experiment.pk)
    comparison = experiment.last_results["metrics"][0]["variants"][1]["comparison"]
    mean, sd = _posterior(*_relative((3000, 300), (3000, 372)))
    risk = _risk_of_shipping(mean, sd)
    assert comparison["lift"] == pytest.approx(mean, abs=1e-9)
    assert comparison["chance_to_win"] == pytest.approx(1 - sps.norm.cdf(-mean / sd), abs=1e-9)
    assert comparison["risk"] == pytest.approx(risk, abs=1e-8)
    assert comparison["chance_to_win"] >= 0.95  # chance alone would ship either way
    assert (risk < risk_threshold) is concludes
    if concludes:
        assert experiment.status == Experiment.Status.CONCLUDED
        assert experiment.winner.key == "treatment"
        (detail,) = _audit("experiment.conclude")
        assert "Concluded (bayesian engine) because the Bayesian decision rule is met" in detail
        assert "risk under 0.25%" in detail
    else:
        assert experiment.status == Experiment.Status.RUNNING
        (detail,) = _audit("experiment.hold")
        assert detail.startswith("Not concluded (bayesian engine): not decisive yet")
        assert "risk under 0.001%" in detail


def test_bayesian_loser_concludes_keeping_control_and_says_why(analytics_store, running):
    experiment = running(days_ago=8, minimum_runtime_days=7, engine="bayesian")
    _traffic(experiment, control=(3000, 450), treatment=(3000, 300))
    experiment = experiment_evaluate(experiment_id=experiment.pk)
    comparison = experiment.last_results["metrics"][0]["variants"][1]["comparison"]
    mean, sd = _posterior(*_relative((3000, 450), (3000, 300)))
    # keeping control risks almost nothing: E[max(lift, 0)]
    forgone, _ = integrate.quad(lambda x: x * sps.norm.pdf(x, mean, sd), 0, mean + 12 * sd + 1)
    assert comparison["risk_control"] == pytest.approx(max(forgone, 0.0), abs=1e-8)
    assert experiment.status == Experiment.Status.CONCLUDED and experiment.winner is None
    assert experiment.conclusion.startswith("No winner: keep the control.")
    (detail,) = _audit("experiment.conclude")
    assert "every variant is decisively worse than control" in detail
    assert "(bayesian engine)" in detail


def test_sequential_engine_does_not_conclude_on_a_fixed_horizon_p_value(analytics_store, running):
    """Hourly looks at a fixed-horizon p-value would inflate false positives; the sequential
    engine judges by its always-valid p-value, which here is not decisive yet."""
    experiment = running(days_ago=8, minimum_runtime_days=7)
    _traffic(experiment, control=(3000, 300), treatment=(3000, 360))
    experiment = experiment_evaluate(experiment_id=experiment.pk)
    comparison = experiment.last_results["metrics"][0]["variants"][1]["comparison"]
    lift, variance = _relative((3000, 300), (3000, 360))
    fixed_p = 2 * sps.norm.sf(abs(lift) / math.sqrt(variance))
    assert fixed_p < 0.05  # a fixed-horizon look would call it
    # the normal-mixture e-value (Waudby-Smith et al.), written out here
    rho2 = (-2 * math.log(0.05) + math.log(-2 * math.log(0.05) + 1)) / stats.DEFAULT_TUNING
    nr2 = 6000 * rho2
    e_value = math.exp(nr2 / (nr2 + 1) * lift**2 / variance / 2) / math.sqrt(nr2 + 1)
    assert comparison["p_value"] == pytest.approx(min(1.0, 1 / e_value), rel=1e-9)
    assert comparison["p_value"] > 0.05
    assert experiment.status == Experiment.Status.RUNNING
    (detail,) = _audit("experiment.hold")
    assert detail.startswith("Not concluded (frequentist engine): not decisive yet")


def test_each_hold_reason_is_logged_once_when_it_changes(analytics_store, running):
    experiment = running(days_ago=2, minimum_runtime_days=7, sequential_testing=False)
    experiment.power_analysis = {"required_users_per_variant": 50000}
    experiment.save()
    _traffic(experiment, control=(1000, 100), treatment=(1000, 100), days=1.0)
    experiment_evaluate(experiment_id=experiment.pk)
    experiment_evaluate(experiment_id=experiment.pk)
    (first,) = _audit("experiment.hold")
    assert "minimum runtime of 7 days not reached" in first
    Experiment.objects.filter(pk=experiment.pk).update(
        started_at=experiment.started_at - dt.timedelta(days=7)
    )
    experiment_evaluate(experiment_id=experiment.pk)
    first, second = _audit("experiment.hold")
    assert second == (
        "Not concluded (frequentist engine): fixed-horizon test: the result is read only at "
        "the planned sample of 50000 users per variant."
    )
