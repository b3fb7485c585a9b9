"""Celery tasks of the shared platform: the scheduled business metrics and alert actions."""

from celery import shared_task

from platform_site.celery import Queue


@shared_task(name="platform_site.refresh_business_metrics", queue=Queue.ANALYTICS, acks_late=True)
def refresh_business_metrics() -> None:
    from platform_site.business_metrics import business_metrics_refresh

    business_metrics_refresh()


@shared_task(
    name="platform_site.act_on_alert",
    queue=Queue.ROLLOUTS,
    acks_late=True,
    reject_on_worker_lost=True,
)
def act_on_alert(alert_id: int) -> None:
    from platform_site.alerts import alert_act

    alert_act(alert_id=alert_id)
