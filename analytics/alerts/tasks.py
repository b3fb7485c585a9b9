"""Celery tasks of product-metric alerts: interfaces to the services only."""

from celery import shared_task

from analytics.store.base import STORE_TASK_OPTIONS
from core.chat import ChatDeliveryFailed
from core.queues import Queue

NOTIFY_RETRIES = 5


@shared_task(name="analytics.check_metric_alerts", queue=Queue.ANALYTICS, acks_late=True)
def check_metric_alerts() -> None:
    from analytics.alerts.services import alerts_check_all

    alerts_check_all()


@shared_task(name="analytics.check_metric_alert", **STORE_TASK_OPTIONS)
def check_metric_alert(alert_id: int) -> None:
    from analytics.alerts.services import alert_check

    alert_check(alert_id=alert_id)  # a second run records a check and changes no state


@shared_task(
    bind=True,
    name="analytics.notify_metric_alert",
    queue=Queue.NOTIFICATIONS,
    acks_late=True,
    max_retries=NOTIFY_RETRIES,
)
def notify_metric_alert(self, event_id: int) -> None:
    from analytics.alerts.services import alert_event_notify

    final = self.request.retries >= NOTIFY_RETRIES
    try:
        alert_event_notify(event_id=event_id, final=final)  # a sent episode is not resent
    except ChatDeliveryFailed as exc:
        raise self.retry(exc=exc, countdown=min(600, 10 * 2**self.request.retries)) from exc
