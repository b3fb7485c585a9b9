"""Celery tasks of the deployments area: take ids, call one service."""

from celery import shared_task
from django.db import OperationalError

from core.queues import Queue
from deployments.cluster import ClusterUnavailable


@shared_task(
    name="deployments.advance_rollout",
    queue=Queue.ROLLOUTS,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(ClusterUnavailable, OperationalError),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=8,
)
def advance_rollout(rollout_id: int, token: int | None = None) -> None:
    from deployments.engine import rollout_advance

    rollout_advance(rollout_id=rollout_id, token=token)  # idempotent: safe to run twice


@shared_task(name="deployments.resume_stuck_rollouts", queue=Queue.ROLLOUTS, acks_late=True)
def resume_stuck_rollouts() -> list[int]:
    from deployments.services import rollouts_resume_stuck

    return rollouts_resume_stuck()
