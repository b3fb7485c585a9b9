"""Celery tasks of the shared platform: the scheduled business metrics and alert actions."""

from celery import shared_task

from core.queues import Queue


@shared_task(name="operations.refresh_business_metrics", queue=Queue.ANALYTICS, acks_late=True)
def refresh_business_metrics() -> None:
    from operations.kpis import business_metrics_refresh

    business_metrics_refresh()


@shared_task(
    name="operations.act_on_alert",
    queue=Queue.ROLLOUTS,
    acks_late=True,
    reject_on_worker_lost=True,
)
def act_on_alert(alert_id: int) -> None:
    from operations.services import alert_act

    alert_act(alert_id=alert_id)
