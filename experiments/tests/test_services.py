"""Starting, stopping and the hourly evaluation that concludes experiments only when safe."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from analytics.catalog import Event
from analytics.store.bulk import rows_insert
from core.models import AuditEntry
from experiments.models import Experiment, Variant, variants_validate
from experiments.services import (
    ExperimentStateError,
    experiment_evaluate,
    experiment_start,
    experiment_stop,
)
from experiments.tests.conftest import event_row, exposure_row
from experiments.tests.factories import ExperimentFactory, MetricFactory

pytestmark = pytest.mark.django_db


def _traffic(experiment, *, control=(2000, 200), treatment=(2000, 200), days=3.0, prefix=""):
    """Exposures and conversions: (users, converters) per arm, spread over `days`."""
    rows = []
    start = experiment.started_at
    for variant, (users, converters) in (("control", control), ("treatment", treatment)):
        for i in range(users):
            at = start + dt.timedelta(seconds=days * 86400 * i / users)
            user = f"{prefix}{variant}-{i}"
            rows.append(exposure_row(experiment.key, user, variant, at))
            if i < converters:
                rows.append(
                    event_row(Event.PROJECT_CREATED, user, at + dt.timedelta(minutes=5), {})
                )
    rows_insert(table="events", rows=rows)


def _tickets(experiment, *, treatment: int, control: int) -> None:
    """Support tickets of the first users of each arm, after every exposure of `_traffic`."""
    at = experiment.started_at + dt.timedelta(days=3, hours=2)
    rows_insert(
        table="events",
        rows=[event_row(Event.SUPPORT_TICKET, f"treatment-{i}", at, {}) for i in range(treatment)]
        + [event_row(Event.SUPPORT_TICKET, f"control-{i}", at, {}) for i in range(control)],
    )


def test_start_computes_power_analysis_from_the_last_30_days(analytics_store, pm):
    now = timezone.now()
    rows = [
        event_row(Event.SESSION_START, f"a{i}", now - dt.timedelta(days=2), {}) for i in range(3000)
    ]
    rows += [
        event_row(Event.PROJECT_CREATED, f"a{i}", now - dt.timedelta(days=1), {})
        for i in range(300)
    ]
    rows_insert(table="events", rows=rows)
    experiment = ExperimentFactory(minimum_detectable_effect=0.1)

    experiment = experiment_start(experiment=experiment, by=pm)

    assert experiment.status == Experiment.Status.RUNNING
    assert experiment.started_by == pm and experiment.started_at is not None
    analysis = experiment.power_analysis
    assert analysis["baseline_mean"] == pytest.approx(0.1)
    assert analysis["active_users_30d"] == 3000
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    n = NormalIndPower().solve_power(proportion_effectsize(0.11, 0.1), alpha=0.05, power=0.8)
    assert analysis["required_users_per_variant"] == pytest.approx(n, rel=2e-3)
    assert analysis["estimated_days"] == pytest.approx(n / (3000 / 30 / 2), rel=0.01)
    assert experiment.sequential_tuning == analysis["required_users_per_variant"] * 2
    assert AuditEntry.objects.filter(action="experiment.start", actor=pm).exists()


def test_only_a_valid_draft_starts(pm, analytics_store):
    experiment = ExperimentFactory(variants=[("control", 0.5), ("b", 0.4)])
    with pytest.raises(ExperimentStateError, match="sum to 1"):
        experiment_start(experiment=experiment, by=pm)
    no_metric = ExperimentFactory(primary_metric=None)
    with pytest.raises(ExperimentStateError, match="no primary metric"):
        experiment_start(experiment=no_metric, by=pm)
    ok = experiment_start(experiment=ExperimentFactory(), by=pm)
    with pytest.raises(ExperimentStateError, match="only a draft can start"):
        experiment_start(experiment=ok, by=pm)
    experiment_stop(experiment=ok, by=pm, reason="enough")
    with pytest.raises(ExperimentStateError, match="only a draft"):
        experiment_start(experiment=ok, by=pm)
    with pytest.raises(ExperimentStateError, match="not running"):
        experiment_stop(experiment=ok, by=pm)
    assert AuditEntry.objects.filter(action="experiment.stop", detail="enough").exists()


@pytest.mark.parametrize(
    ("variants", "problem"),
    [
        ([{"key": "a", "weight": 1, "is_control": True}], "at least two"),
        (
            [
                {"key": "a", "weight": 0.5, "is_control": True},
                {"key": "b", "weight": 0.5, "is_control": True},
            ],
            "exactly one variant must be the control",
        ),
        (
            [
                {"key": "a", "weight": 0.5, "is_control": True},
                {"key": "a", "weight": 0.5, "is_control": False},
            ],
            "unique",
        ),
        (
            [
                {"key": "a", "weight": 60, "is_control": True},
                {"key": "b", "weight": 30, "is_control": False},
            ],
            "sum to 1",
        ),
    ],
)
def test_variant_validation(variants, problem):
    with pytest.raises(ValidationError, match=problem):
        variants_validate(variants)


def test_percentages_summing_to_100_are_valid():
    variants_validate(
        [
            {"key": "a", "weight": 50, "is_control": True},
            {"key": "b", "weight": 50, "is_control": False},
        ]
    )


@pytest.mark.parametrize("sticky", [True, False])
def test_started_experiment_refuses_rerandomizing_changes(running, sticky):
    """Coverage may change only where sticky bucketing keeps bucketed users in place."""
    experiment = running(sticky_bucketing=sticky)
    refused = [("hash_seed", "other"), ("key", "renamed"), ("sticky_bucketing", not sticky)]
    for field, value in refused + ([] if sticky else [("coverage", 0.5)]):
        changed = Experiment.objects.get(pk=experiment.pk)
        setattr(changed, field, value)
        with pytest.raises(ValidationError) as exc:
            changed.full_clean()
        assert field in exc.value.message_dict
    fine = Experiment.objects.get(pk=experiment.pk)
    fine.name = "A clearer name"
    if sticky:
        fine.coverage = 0.5
    fine.full_clean()


def test_evaluate_waits_for_the_minimum_runtime(analytics_store, running):
    experiment = running(days_ago=2, minimum_runtime_days=7)
    _traffic(experiment, control=(3000, 300), treatment=(3000, 600), days=1.5)
    experiment = experiment_evaluate(experiment_id=experiment.pk)
    assert experiment.status == Experiment.Status.RUNNING
    assert experiment.last_results["decision"]["kind"] == "winner"


def test_evaluate_concludes_on_a_decisive_sequential_test(analytics_store, running):
    experiment = running(days_ago=8, minimum_runtime_days=7)
    _traffic(experiment, control=(3000, 300), treatment=(3000, 450))
    experiment = experiment_evaluate(experiment_id=experiment.pk)
    assert experiment.status == Experiment.Status.CONCLUDED
    assert experiment.winner.key == "treatment"
    assert (
        "increases" in experiment.conclusion
        and "sequential test is decisive" in experiment.conclusion
    )
    entry = AuditEntry.objects.get(action="experiment.conclude")
    assert entry.actor_label == "monitor:experiments" and entry.target_id == str(experiment.pk)
    assert experiment_evaluate(experiment_id=experiment.pk).status == Experiment.Status.CONCLUDED


def test_srm_blocks_conclusion(analytics_store, running):
    experiment = running(days_ago=8, minimum_runtime_days=7)
    _traffic(experiment, control=(3000, 300), treatment=(2500, 450))
    experiment = experiment_evaluate(experiment_id=experiment.pk)
    assert experiment.status == Experiment.Status.RUNNING
    assert experiment.srm_flagged is True


def test_harmed_guardrail_blocks_an_early_win(analytics_store, running):
    guard = MetricFactory(key="tickets", event=Event.SUPPORT_TICKET, direction="decrease")
    experiment = running(days_ago=8, minimum_runtime_days=7)
    experiment.guardrail_metrics.set([guard])
    _traffic(experiment, control=(3000, 300), treatment=(3000, 450))
    at = experiment.started_at + dt.timedelta(days=3)  # after every exposure, inside the window
    tickets = [
        event_row(Event.SUPPORT_TICKET, f"treatment-{i}", at + dt.timedelta(hours=2), {})
        for i in range(600)
    ]
    tickets += [
        event_row(Event.SUPPORT_TICKET, f"control-{i}", at + dt.timedelta(hours=2), {})
        for i in range(100)
    ]
    rows_insert(table="events", rows=tickets)
    experiment = experiment_evaluate(experiment_id=experiment.pk)
    assert experiment.status == Experiment.Status.RUNNING
    assert "guardrail" in experiment.last_results["verdict"]


def test_without_sequential_testing_it_never_stops_early_on_a_p_value(analytics_store, running):
    experiment = running(days_ago=8, minimum_runtime_days=7, sequential_testing=False)
    experiment.power_analysis = {"required_users_per_variant": 50000}
    experiment.save()
    _traffic(experiment, control=(3000, 300), treatment=(3000, 450))
    experiment = experiment_evaluate(experiment_id=experiment.pk)
    assert experiment.last_results["decision"]["kind"] == "winner"  # significant, but...
    assert experiment.status == Experiment.Status.RUNNING  # ...the planned sample is not reached


def test_reaching_the_planned_sample_concludes_with_no_winner(analytics_store, running):
    experiment = running(days_ago=8, minimum_runtime_days=7, sequential_testing=False)
    experiment.power_analysis = {"required_users_per_variant": 2000}
    experiment.save()
    _traffic(experiment, control=(2500, 250), treatment=(2500, 255))
    experiment = experiment_evaluate(experiment_id=experiment.pk)
    assert experiment.status == Experiment.Status.CONCLUDED
    assert experiment.winner is None
    assert experiment.conclusion.startswith("No winner")
    assert "planned sample of 2000" in experiment.conclusion


def test_concluded_experiment_stops_assigning(analytics_store, running):
    from experiments.assignment import assignments_for, running_experiments

    experiment = running(days_ago=8, minimum_runtime_days=7)
    running_experiments.invalidate()
    assert experiment.key in assignments_for("someone", {})[0]
    _traffic(experiment, control=(3000, 300), treatment=(3000, 450))
    experiment_evaluate(experiment_id=experiment.pk)
    running_experiments.invalidate()  # on_commit does this in production; tests run in a transaction
    assert assignments_for("someone", {})[0] == {}


def test_variant_key_unique_per_experiment(running):
    from django.db import IntegrityError

    experiment = running()
    with pytest.raises(IntegrityError):
        Variant.objects.create(experiment=experiment, key="control", weight=0.1)


def test_variants_of_a_started_experiment_refuse_changes(running):
    variant = running(sticky_bucketing=False).variants.first()
    variant.weight = 0.9
    with pytest.raises(ValidationError, match="re-randomize"):
        variant.full_clean()
    sticky = running().variants.first()
    sticky.weight = 0.9
    sticky.full_clean()  # weights may move: bucketed users keep their variant
    sticky.key = "renamed"
    with pytest.raises(ValidationError, match="re-randomize"):
        sticky.full_clean()


def test_bayesian_engine_concludes_by_its_risk_rule_and_says_so(analytics_store, running):
    experiment = running(days_ago=8, minimum_runtime_days=7, engine="bayesian")
    _traffic(experiment, control=(3000, 300), treatment=(3000, 450))
    experiment = experiment_evaluate(experiment_id=experiment.pk)
    result = experiment.last_results
    assert result["engine"] == "bayesian" and result["sequential"] is False
    comparison = result["metrics"][0]["variants"][1]["comparison"]
    assert "p_value" not in comparison
    assert comparison["chance_to_win"] > 0.95 and comparison["risk"] < 0.0025
    assert experiment.status == Experiment.Status.CONCLUDED
    assert experiment.winner.key == "treatment"
    assert "Bayesian decision rule is met" in experiment.conclusion
    assert "chance to win" in experiment.conclusion
    entry = AuditEntry.objects.get(action="experiment.conclude")
    assert "bayesian engine" in entry.detail


def test_bayesian_risk_above_threshold_holds_and_explains_once(analytics_store, running):
    experiment = running(days_ago=8, minimum_runtime_days=7, engine="bayesian")
    _traffic(experiment, control=(800, 80), treatment=(800, 92))
    experiment_evaluate(experiment_id=experiment.pk)
    experiment = experiment_evaluate(experiment_id=experiment.pk)
    assert experiment.status == Experiment.Status.RUNNING
    assert experiment.last_results["decision"]["kind"] == "flat"
    (hold,) = AuditEntry.objects.filter(action="experiment.hold")  # same reason: logged once
    assert "bayesian engine" in hold.detail and "risk under 0.25%" in hold.detail


def test_failing_guardrail_blocks_conclusion_even_at_the_planned_sample(analytics_store, running):
    guard = MetricFactory(key="tickets2", event=Event.SUPPORT_TICKET, direction="decrease")
    experiment = running(days_ago=8, minimum_runtime_days=7, sequential_testing=False)
    experiment.guardrail_metrics.set([guard])
    experiment.power_analysis = {"required_users_per_variant": 2000}
    experiment.save()
    _traffic(experiment, control=(2500, 250), treatment=(2500, 255))
    _tickets(experiment, treatment=500, control=100)
    experiment = experiment_evaluate(experiment_id=experiment.pk)
    assert experiment.status == Experiment.Status.RUNNING
    assert experiment.last_results["decision"]["failing_guardrails"] == ["tickets2 (treatment)"]
    hold = AuditEntry.objects.get(action="experiment.hold")
    assert "guardrail is failing (tickets2 (treatment))" in hold.detail


def test_engine_is_frozen_once_started(running):
    experiment = Experiment.objects.get(pk=running().pk)
    experiment.engine = "bayesian"
    with pytest.raises(ValidationError) as exc:
        experiment.full_clean()
    assert "engine" in exc.value.message_dict


def test_new_experiments_take_the_project_engine(settings):
    settings.EXPERIMENTS_ENGINE = "bayesian"
    assert Experiment().engine == "bayesian"
    settings.EXPERIMENTS_ENGINE = "frequentist"
    assert Experiment().engine == "frequentist"
