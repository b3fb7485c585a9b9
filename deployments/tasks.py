"""Celery tasks of the deployments area: take ids, call one service."""

from celery import shared_task
from django.db import OperationalError

from core.queues import Queue
from deployments.cluster import ClusterUnavailable
from deployments.notify import DeliveryFailed


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


@shared_task(name="deployments.run_post_rollout_hooks", queue=Queue.ROLLOUTS, acks_late=True)
def run_post_rollout_hooks(rollout_id: int) -> None:
    from deployments.services import rollout_post_hooks

    rollout_post_hooks(rollout_id=rollout_id)


@shared_task(
    name="deployments.send_rollout_notification",
    queue=Queue.NOTIFICATIONS,
    acks_late=True,
    autoretry_for=(DeliveryFailed,),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=6,
)
def send_rollout_notification(event_id: int, provider_id: int) -> int | None:
    from deployments.notify import notification_send

    return notification_send(event_id=event_id, provider_id=provider_id)
