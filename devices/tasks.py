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


@shared_task(
    name="devices.plan_broadcast",
    queue=Queue.NOTIFICATIONS,
    acks_late=True,
    reject_on_worker_lost=True,
)
def plan_broadcast(broadcast_id: int) -> int:
    from devices.broadcasts import broadcast_plan

    return broadcast_plan(broadcast_id=broadcast_id)  # recipients are one row per user


@shared_task(
    name="devices.send_broadcast_batch",
    queue=Queue.NOTIFICATIONS,
    acks_late=True,
    reject_on_worker_lost=True,
)
def send_broadcast_batch(broadcast_id: int, index: int) -> dict:
    from devices.broadcasts import broadcast_send_batch

    return broadcast_send_batch(broadcast_id=broadcast_id, index=index)  # handled rows skip
