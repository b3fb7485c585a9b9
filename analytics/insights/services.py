"""Every write of the insight models: starting and running retrains, registering versions."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from threadpoolctl import threadpool_limits

from analytics.insights import scoring, training
from analytics.insights.features import data_end
from analytics.insights.models import ModelVersion, TrainingRun
from analytics.insights.registry import KINDS, artifact_save
from core.errors import DomainError, InvalidRequest
from core.services import audit_record

log = logging.getLogger(__name__)


class RetrainAlreadyRunning(DomainError):
    code = "retrain_running"


def training_run_start(*, kind: str, by=None, trigger: str = "") -> TrainingRun:
    """Queue a retrain of `kind`; refused (409) while another run of that kind is unfinished."""
    from analytics.insights.tasks import retrain

    if kind not in KINDS:
        raise InvalidRequest("kind", f"must be one of {', '.join(KINDS)}")
    label = trigger or (getattr(by, "username", None) or str(by or "system"))
    try:
        with transaction.atomic():
            run = TrainingRun.objects.create(kind=kind, triggered_by=label)
    except IntegrityError:
        running = TrainingRun.objects.filter(
            kind=kind, state__in=[TrainingRun.State.QUEUED, TrainingRun.State.RUNNING]
        ).first()
        raise RetrainAlreadyRunning(
            f"a {kind} retrain is already {running.state if running else 'running'}"
            + (f" (run {running.pk})" if running else "")
        ) from None
    audit_record(actor=by, action="ml.retrain", target=run, detail=kind)
    transaction.on_commit(lambda: retrain.delay(run.pk))
    return run


def _advance(run: TrainingRun, stage: str, progress: int) -> None:
    run.stage, run.progress = stage, progress
    run.save(update_fields=["stage", "progress"])


def training_run_execute(*, run_id: int) -> TrainingRun:
    """Extract, train, validate, register (activation rule), then batch-score every user.

    Idempotent: a run that is not queued (already done, or taken by another worker) is left.
    """
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run_id)
        if run.state != TrainingRun.State.QUEUED:
            return run
        run.state, run.started_at = TrainingRun.State.RUNNING, timezone.now()
        run.save(update_fields=["state", "started_at"])
    try:
        end = data_end()
        if end is None:
            raise training.NotEnoughData("the analytics store has no events")
        with threadpool_limits(limits=settings.ML_THREADS):
            trained = training.train(
                run.kind,
                end=end,
                window_days=settings.ML_WINDOW_DAYS,
                horizon_days=settings.ML_HORIZON_DAYS,
                ltv_horizon_days=settings.ML_LTV_HORIZON_DAYS,
                stage=lambda name, percent: _advance(run, name, percent),
            )
        version = model_version_register(trained=trained, triggered_by=run.triggered_by)
        run.model_version = version
        _advance(run, TrainingRun.Stage.SCORING, 85)
        scoring.score_all()
    except Exception as exc:
        log.exception("retrain %s (%s) failed", run.pk, run.kind)
        run.state, run.error = TrainingRun.State.FAILED, f"{type(exc).__name__}: {exc}"
        run.finished_at = timezone.now()
        run.save(update_fields=["state", "error", "finished_at", "model_version"])
        return run
    run.state, run.stage, run.progress = TrainingRun.State.SUCCEEDED, TrainingRun.Stage.DONE, 100
    run.finished_at = timezone.now()
    run.save(update_fields=["state", "stage", "progress", "finished_at", "model_version"])
    return run


@transaction.atomic
def model_version_register(*, trained: training.Trained, triggered_by: str = "") -> ModelVersion:
    """Store the artifact and the version; activate it unless it validates worse (margin)."""
    kind = trained.kind
    latest = ModelVersion.objects.select_for_update().filter(kind=kind).order_by("-version").first()
    number = (latest.version if latest else 0) + 1
    active = ModelVersion.objects.filter(kind=kind, is_active=True).first()
    activate, note = training.should_activate(
        kind,
        trained.metrics,
        active.metrics if active else None,
        margin=settings.ML_ACTIVATION_MARGIN,
    )
    path = artifact_save(kind=kind, version=number, model=trained.model)
    if activate and active:
        ModelVersion.objects.filter(pk=active.pk).update(is_active=False)
    version = ModelVersion.objects.create(
        kind=kind,
        version=number,
        reference_at=trained.reference_at,
        window_days=trained.window_days,
        horizon_days=trained.horizon_days,
        train_rows=trained.train_rows,
        validation_rows=trained.validation_rows,
        metrics=trained.metrics,
        artifact=str(path),
        is_active=activate,
        activation_note=("activated: " if activate else "kept inactive: ") + note,
        triggered_by=triggered_by,
    )
    audit_record(
        actor=None, action="ml.model_version", target=version, detail=version.activation_note
    )
    return version


def retrain_all(*, trigger: str) -> list[TrainingRun]:
    """Queue a retrain of every kind (the weekly schedule); kinds already running are skipped."""
    runs = []
    for kind in KINDS:
        try:
            runs.append(training_run_start(kind=kind, trigger=trigger))
        except RetrainAlreadyRunning:
            continue
    return runs
