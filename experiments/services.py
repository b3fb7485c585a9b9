"""Every change to an experiment: start, stop, the hourly evaluation and its conclusion."""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from analytics.catalog import Event
from core.errors import DomainError
from core.services import audit_record
from experiments import results as readout
from experiments.assignment import running_experiments
from experiments.models import Experiment, Holdout, sticky_key, variants_validate

log = logging.getLogger(__name__)


class ExperimentStateError(DomainError):
    code = "experiment_state"


def _locked(experiment: Experiment) -> Experiment:
    return Experiment.objects.select_for_update().get(pk=experiment.pk)


def experiment_check_startable(experiment: Experiment) -> None:
    """Raise ExperimentStateError naming what prevents the experiment from starting."""
    if experiment.status != Experiment.Status.DRAFT:
        raise ExperimentStateError(
            f"experiment {experiment.key} is {experiment.status}; only a draft can start "
            "(start a new experiment instead of restarting one)"
        )
    if experiment.primary_metric_id is None:
        raise ExperimentStateError(f"experiment {experiment.key} has no primary metric")
    try:
        variants_validate(
            [
                {"key": v.key, "weight": v.weight, "is_control": v.is_control}
                for v in experiment.variants.all()
            ]
        )
    except ValidationError as exc:
        raise ExperimentStateError(f"experiment {experiment.key}: {exc.messages[0]}") from None


@transaction.atomic
def experiment_start(*, experiment: Experiment, by) -> Experiment:
    experiment = _locked(experiment)
    experiment_check_startable(experiment)
    analysis = readout.experiment_power_analysis(experiment)
    experiment.power_analysis = analysis
    required = analysis.get("required_users_per_variant")
    # Tuned so the always-valid interval is tightest at the planned total sample.
    experiment.sequential_tuning = (
        float(required * experiment.variants.count()) if required else None
    )
    experiment.status = Experiment.Status.RUNNING
    # The splits chosen before anyone could look at results; later ones get a warning.
    experiment.preregistered_dimensions = list(experiment.dimensions or [])
    experiment.started_at = timezone.now()
    experiment.started_by = by if getattr(by, "pk", None) else None
    experiment.save()
    audit_record(
        actor=by,
        action="experiment.start",
        target=experiment,
        detail=f"required users per variant: {required or 'unknown'}; "
        f"estimated days: {analysis.get('estimated_days') or 'unknown'}",
    )
    transaction.on_commit(running_experiments.invalidate)
    return experiment


@transaction.atomic
def experiment_stop(*, experiment: Experiment, by, reason: str = "") -> Experiment:
    experiment = _locked(experiment)
    if experiment.status != Experiment.Status.RUNNING:
        raise ExperimentStateError(
            f"experiment {experiment.key} is {experiment.status}, not running"
        )
    experiment.status = Experiment.Status.STOPPED
    experiment.ended_at = timezone.now()
    experiment.ended_by = getattr(by, "username", None) or str(by or "system")
    experiment.conclusion = f"Stopped by hand. {reason}".strip()
    experiment.save()
    audit_record(actor=by, action="experiment.stop", target=experiment, detail=reason)
    transaction.on_commit(running_experiments.invalidate)
    return experiment


def conclusion_reason(experiment: Experiment, result: dict) -> tuple[bool, str]:
    """(may conclude, why), by the experiment's engine. Never with a sample ratio mismatch or
    a failing guardrail, never before the minimum runtime. Frequentist: a sequential test
    concludes when decisive on the primary metric; a fixed-horizon test only once the
    planned sample is reached (looking earlier would inflate its error rate). Bayesian: when
    the decision rule on chance to win and risk is met, or the planned sample is reached."""
    started = experiment.started_at or timezone.now()
    days = (timezone.now() - started).total_seconds() / 86400
    if days < experiment.minimum_runtime_days:
        ends = started + dt.timedelta(days=experiment.minimum_runtime_days)
        return (
            False,
            f"minimum runtime of {experiment.minimum_runtime_days} days not reached "
            f"(until {ends:%Y-%m-%d %H:%M} UTC)",
        )
    decision = result["decision"]
    if not result["srm"]["ok"]:
        return False, "sample ratio mismatch: no conclusion while the split is wrong"
    if decision["failing_guardrails"]:
        return False, (
            "a guardrail is failing ("
            + ", ".join(decision["failing_guardrails"])
            + "): no conclusion while it does; a person decides"
        )
    kind = decision["kind"]
    required = result["required_users_per_variant"]
    reached = bool(required) and result["users_per_variant_so_far"] >= required
    decisive = kind in ("winner", "loser")
    if result["engine"] == Experiment.Engine.BAYESIAN and decisive:
        return True, f"the Bayesian decision rule is met: {decision['reason']}"
    if result["engine"] == Experiment.Engine.FREQUENTIST and result["sequential"] and decisive:
        return True, f"the sequential test is decisive: {decision['reason']}"
    if reached:
        return True, f"the planned sample of {required} users per variant is reached"
    if result["engine"] == Experiment.Engine.FREQUENTIST and not result["sequential"]:
        return False, (
            "fixed-horizon test: the result is read only at the planned sample of "
            f"{required or 'unknown'} users per variant"
        )
    return False, f"not decisive yet ({decision['reason']}) and the planned sample is not reached"


def experiment_evaluate(*, experiment_id: int) -> Experiment:
    """Recompute a running experiment's results and conclude it when that is safe; every
    new decision (concluded, or held back and why) goes to the audit log.
    Idempotent: a stopped or concluded experiment is left as it is."""
    experiment = Experiment.objects.get(pk=experiment_id)
    if experiment.status != Experiment.Status.RUNNING:
        return experiment
    result = readout.experiment_results(experiment)
    may_conclude, reason = conclusion_reason(experiment, result)
    result["conclusion_check"] = {"may_conclude": may_conclude, "reason": reason}
    with transaction.atomic():
        experiment = _locked(experiment)
        if experiment.status != Experiment.Status.RUNNING:
            return experiment
        previous = (experiment.last_results or {}).get("conclusion_check", {}).get("reason")
        experiment.last_results = result
        experiment.results_computed_at = timezone.now()
        experiment.srm_flagged = not result["srm"]["ok"]
        fields = ["last_results", "results_computed_at", "srm_flagged", "updated_at"]
        if may_conclude:
            experiment_conclude(experiment=experiment, result=result, reason=reason)
            fields += ["status", "ended_at", "ended_by", "conclusion", "winner"]
        elif reason != previous:
            audit_record(
                actor="monitor:experiments",
                action="experiment.hold",
                target=experiment,
                detail=f"Not concluded ({result['engine']} engine): {reason}.",
            )
        experiment.save(update_fields=fields)
    return experiment


def experiment_conclude(*, experiment: Experiment, result: dict, reason: str) -> None:
    """Mark a locked running experiment concluded with its winner (or none); the caller saves."""
    decision = result["decision"]
    winner = None
    if decision["kind"] == "winner" and not decision["failing_guardrails"]:
        winner = experiment.variants.filter(key=decision["variant"]).first()
    experiment.status = Experiment.Status.CONCLUDED
    experiment.ended_at = timezone.now()
    experiment.ended_by = "monitor"
    experiment.winner = winner
    outcome = "" if winner else "No winner: keep the control. "
    experiment.conclusion = (
        f"{outcome}{result['verdict']} Concluded ({result['engine']} engine) because {reason}."
    )
    audit_record(
        actor="monitor:experiments",
        action="experiment.conclude",
        target=experiment,
        detail=experiment.conclusion,
    )
    transaction.on_commit(running_experiments.invalidate)


def experiments_to_monitor() -> list[int]:
    return list(
        Experiment.objects.filter(status=Experiment.Status.RUNNING).values_list("id", flat=True)
    )


def exposures_record(*, assignments: dict[str, str], user_id: str, api_key, ip, user_agent) -> None:
    """Send one `experiment_assignment` event per assignment (an experiment's key, or a
    holdout's tracking key, and the variant or group) through the analytics capture
    path (a durable buffer; never a synchronous store write). A capture failure is logged
    and does not fail the assignment."""
    if not assignments:
        return
    now = timezone.now().isoformat()
    events = [
        {
            "uuid": str(uuid.uuid4()),
            "event": Event.EXPERIMENT_ASSIGNMENT.value,
            "user_id": user_id,
            "timestamp": now,
            "properties": {"experiment_id": key, "variant": variant},
        }
        for key, variant in assignments.items()
    ]
    try:
        from analytics.events.services import events_capture

        events_capture(events=events, api_key=api_key, ip=ip, user_agent=user_agent)
    except Exception:
        log.exception("exposure events for %s could not be captured", user_id)


@transaction.atomic
def experiment_assignment_change(
    *,
    experiment: Experiment,
    by,
    changes: list[str],
    rerandomize: bool = False,
    exclude_previous: bool = False,
) -> tuple[Experiment, str]:
    """Record a change to a started experiment's targeting, coverage or weights and say what
    it does to users. With sticky bucketing and no re-randomization, users already bucketed
    stay in their variant and only new users follow the change. Re-randomizing raises the
    bucket version (GrowthBook's `bucketVersion`) and gives the hash a new seed (GrowthBook's
    new phase seed), so every user is hashed again; with
    `exclude_previous` the minimum bucket version follows it (`minBucketVersion`), so users
    bucketed before are left out of the experiment from now on."""
    experiment = _locked(experiment)
    if not experiment.has_started:
        raise ExperimentStateError(f"experiment {experiment.key} has not started")
    if (rerandomize or exclude_previous) and not experiment.sticky_bucketing:
        raise ExperimentStateError(
            f"experiment {experiment.key} has no sticky bucketing: nothing to re-randomize"
        )
    what = ", ".join(changes) or "nothing"
    if exclude_previous:
        rerandomize = True
    if rerandomize:
        experiment.bucket_version += 1
        experiment.hash_seed = sticky_key(experiment.key, experiment.bucket_version)
        if exclude_previous:
            experiment.min_bucket_version = experiment.bucket_version
        experiment.save(
            update_fields=["bucket_version", "min_bucket_version", "hash_seed", "updated_at"]
        )
        effect = f"re-randomized (bucket version {experiment.bucket_version}" + (
            "; users bucketed before are excluded from now on)"
            if exclude_previous
            else "; every user is hashed again)"
        )
        action = "experiment.rerandomize"
    elif experiment.sticky_bucketing:
        effect = (
            "users already bucketed keep their variant (sticky bucketing); only users new "
            "to the experiment follow the change, so the split among all users moves slowly "
            "and the results mix both"
        )
        action = "experiment.assignment_change"
    else:
        effect = "no sticky bucketing: users are hashed with the new settings at once"
        action = "experiment.assignment_change"
    message = f"{experiment.key}: changed {what}; {effect}"
    audit_record(actor=by, action=action, target=experiment, detail=message)
    transaction.on_commit(running_experiments.invalidate)
    return experiment, message


class HoldoutStateError(DomainError):
    code = "holdout_state"


@transaction.atomic
def holdout_start(*, holdout: Holdout, by) -> Holdout:
    """Start holding users out of the covered experiments (from their next assignment and the
    next SDK payload)."""
    holdout = Holdout.objects.select_for_update().get(pk=holdout.pk)
    if holdout.status != Holdout.Status.DRAFT:
        raise HoldoutStateError(f"holdout {holdout.key} is {holdout.status}; only a draft starts")
    started = [e.key for e in holdout.experiments.all() if e.has_started]
    if started:
        raise HoldoutStateError(
            f"holdout {holdout.key} covers experiments that have started ({', '.join(started)}): "
            "holding users out now would pull some out of them mid-test; cover only drafts"
        )
    holdout.status = Holdout.Status.RUNNING
    holdout.started_at = timezone.now()
    holdout.save(update_fields=["status", "started_at", "updated_at"])
    audit_record(
        actor=by,
        action="holdout.start",
        target=holdout,
        detail=f"{holdout.percentage:.1%} of users held out of "
        + (", ".join(e.key for e in holdout.experiments.all()) or "no experiment yet"),
    )
    transaction.on_commit(running_experiments.invalidate)
    return holdout


@transaction.atomic
def holdout_end(*, holdout: Holdout, by, reason: str = "") -> Holdout:
    """Release the held users: they join the covered experiments from their next assignment;
    the readout keeps the period the holdout ran."""
    holdout = Holdout.objects.select_for_update().get(pk=holdout.pk)
    if holdout.status != Holdout.Status.RUNNING:
        raise HoldoutStateError(f"holdout {holdout.key} is {holdout.status}, not running")
    holdout.status = Holdout.Status.ENDED
    holdout.ended_at = timezone.now()
    holdout.save(update_fields=["status", "ended_at", "updated_at"])
    audit_record(actor=by, action="holdout.end", target=holdout, detail=reason)
    transaction.on_commit(running_experiments.invalidate)
    return holdout


def holdout_experiments_check(*, holdout: Holdout, experiments) -> None:
    """Raise HoldoutStateError when a started holdout would newly cover a started experiment
    (its users already in a variant would be pulled out mid-test)."""
    if not holdout.has_started:
        return
    current = set(holdout.experiments.values_list("pk", flat=True)) if holdout.pk else set()
    added = [e.key for e in experiments if e.pk not in current and e.has_started]
    if added:
        raise HoldoutStateError(
            f"cannot add experiments that have started to a running holdout ({', '.join(added)}):"
            " users already in them would be pulled out mid-test"
        )


def holdout_experiments_changed(*, holdout: Holdout, by, before: set[str]) -> None:
    """After the covered experiments of a started holdout changed: audit what changed and
    reload the assignment snapshot."""
    after = set(holdout.experiments.values_list("key", flat=True))
    if not holdout.has_started or after == before:
        return
    added, removed = sorted(after - before), sorted(before - after)
    detail = "; ".join(
        part
        for part in (
            f"now covers {', '.join(added)}" if added else "",
            f"no longer covers {', '.join(removed)} (its held users join it now)"
            if removed
            else "",
        )
        if part
    )
    audit_record(actor=by, action="holdout.experiments", target=holdout, detail=detail)
    transaction.on_commit(running_experiments.invalidate)


def holdouts_end_planned() -> list[str]:
    """End the running holdouts past their planned end (`ends_at`), audited as reached; the
    keys ended. Assignment and the payload already stop holding their users at that time."""
    due = Holdout.objects.filter(status=Holdout.Status.RUNNING, ends_at__lte=timezone.now())
    ended = []
    for holdout in due:
        try:
            holdout_end(holdout=holdout, by="monitor:experiments", reason="planned end reached")
        except HoldoutStateError:
            continue  # ended meanwhile
        ended.append(holdout.key)
    return ended
