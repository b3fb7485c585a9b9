"""Celery tasks of the devices area (queue `notifications`): each calls one service."""

from celery import shared_task

from core.queues import Queue
from devices import services


@shared_task(
    name="devices.dispatch_notification",
    queue=Queue.NOTIFICATIONS,
    acks_late=True,
    reject_on_worker_lost=True,
)
def dispatch_notification(notification_id: int) -> dict:
    # Idempotent: the notification is claimed, and a redone fan-out skips delivered devices.
    # Provider failures do not raise: they become retrying deliveries (see send_due).
    return services.notifications_dispatch(notification_ids=[notification_id])


@shared_task(name="devices.send_due", queue=Queue.NOTIFICATIONS, acks_late=True)
def send_due() -> dict:
    return services.notifications_send_due()


@shared_task(name="devices.prune_devices", queue=Queue.NOTIFICATIONS, acks_late=True)
def prune_devices() -> dict:
    return services.devices_prune()
