"""Push broadcasts to a saved cohort: every member with an active device gets one
notification (the usual fan-out: quiet hours, retries, dead tokens), in batches, at most
PUSH_BROADCAST_CAP broadcasts per user in PUSH_BROADCAST_CAP_HOURS; sending twice sends once.

Opens: the app captures `$push_opened` with `broadcast_id` when a person opens it; the open
rate is the distinct openers over the users with a sent delivery.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone

from core import audiences
from core.errors import DomainError, InvalidRequest, MissingReference
from core.services import actor_label, audit_record
from devices.models import (
    Broadcast,
    BroadcastRecipient,
    Delivery,
    DeliveryStatus,
    Device,
    Notification,
    NotificationStatus,
    NotificationType,
)

OPEN_EVENT = "$push_opened"


class BroadcastStateError(DomainError):
    pass


def broadcast_create(*, name: str, cohort_id: int, title: str, body: str, by) -> Broadcast:
    names = dict(audiences.choices())
    if cohort_id not in names:
        raise MissingReference("cohort_id", "not a computed saved cohort")
    for field, value, limit in (("name", name, 100), ("title", title, 200), ("body", body, 1000)):
        if not value.strip() or len(value) > limit:
            raise InvalidRequest(field, f"1-{limit} characters")
    broadcast = Broadcast.objects.create(
        name=name.strip(),
        cohort_id=cohort_id,
        cohort_name=names[cohort_id][:100],
        title=title.strip(),
        body=body.strip(),
        created_by=actor_label(by)[:200],
    )
    audit_record(actor=by, action="broadcast.create", target=broadcast, detail=broadcast.name)
    return broadcast


def broadcast_send(*, broadcast: Broadcast, by) -> Broadcast:
    """Start the fan-out; a broadcast already started is left as it is (sent once)."""
    from devices.tasks import plan_broadcast

    with transaction.atomic():
        broadcast = Broadcast.objects.select_for_update().get(pk=broadcast.pk)
        if broadcast.state != Broadcast.State.DRAFT:
            return broadcast
        broadcast.state, broadcast.started_at = Broadcast.State.SENDING, timezone.now()
        broadcast.save(update_fields=["state", "started_at"])
        audit_record(actor=by, action="broadcast.send", target=broadcast)
        pk = broadcast.pk
        transaction.on_commit(lambda: plan_broadcast.delay(pk))
    return broadcast


def broadcast_plan(*, broadcast_id: int, inline: bool = False) -> int:
    """Read the audience, keep the members with an active device as recipients (one row each)
    and queue one batch task per PUSH_BROADCAST_BATCH of them (`inline`: send them here, as
    seed_demo does before any worker runs); the number of batches."""
    from devices.tasks import send_broadcast_batch

    broadcast = Broadcast.objects.get(pk=broadcast_id)
    if broadcast.state != Broadcast.State.SENDING:
        return 0
    members = no_device = 0
    try:
        for page in audiences.members(broadcast.cohort_id):
            members += len(page)
            reachable = set(
                Device.objects.filter(user_id__in=page, is_active=True).values_list(
                    "user_id", flat=True
                )
            )
            no_device += len(page) - len(reachable)
            BroadcastRecipient.objects.bulk_create(
                [BroadcastRecipient(broadcast=broadcast, user_id=u) for u in sorted(reachable)],
                ignore_conflicts=True,  # a plan run twice adds nobody twice
            )
    except audiences.AudienceUnavailable as exc:
        Broadcast.objects.filter(pk=broadcast.pk).update(
            state=Broadcast.State.FAILED, error=str(exc)[:500], finished_at=timezone.now()
        )
        return 0
    recipients = broadcast.rows.count()
    size = settings.PUSH_BROADCAST_BATCH
    batches = -(-recipients // size)
    Broadcast.objects.filter(pk=broadcast.pk).update(
        members=members, no_device=no_device, recipients=recipients, batches=batches
    )
    if not batches:
        _finish_if_done(broadcast.pk)
    for index in range(batches):
        if inline:
            broadcast_send_batch(broadcast_id=broadcast.pk, index=index)
        else:
            send_broadcast_batch.delay(broadcast.pk, index)
    return batches


def broadcast_send_batch(*, broadcast_id: int, index: int) -> dict[str, int]:
    """Notify the `index`-th batch of recipients (those not yet handled), held to the
    frequency cap, and fan the notifications out at once."""
    from devices.services import notifications_dispatch

    broadcast = Broadcast.objects.get(pk=broadcast_id)
    size = settings.PUSH_BROADCAST_BATCH
    ids = list(broadcast.rows.order_by("pk").values_list("pk", flat=True)[index * size :][:size])
    rows = list(
        BroadcastRecipient.objects.filter(pk__in=ids, outcome=BroadcastRecipient.Outcome.PENDING)
    )
    now = timezone.now()
    window = now - timedelta(hours=settings.PUSH_BROADCAST_CAP_HOURS)
    recent = dict(
        BroadcastRecipient.objects.filter(
            user_id__in=[r.user_id for r in rows],
            outcome=BroadcastRecipient.Outcome.NOTIFIED,
            at__gte=window,
        )
        .exclude(broadcast=broadcast)
        .values("user_id")
        .annotate(n=Count("pk"))
        .values_list("user_id", "n")
    )
    data = {"title": broadcast.title, "body": broadcast.body, "broadcast_id": broadcast.pk}
    notified, capped = [], 0
    for row in rows:
        with transaction.atomic():
            row = BroadcastRecipient.objects.select_for_update().get(pk=row.pk)
            if row.outcome != BroadcastRecipient.Outcome.PENDING:
                continue  # another run of this batch got here first
            if recent.get(row.user_id, 0) >= settings.PUSH_BROADCAST_CAP:
                row.outcome, row.at = BroadcastRecipient.Outcome.CAPPED, now
                capped += 1
            else:
                row.notification = Notification.objects.create(
                    user_id=row.user_id,
                    type=NotificationType.BROADCAST,
                    data=data,
                    broadcast=broadcast,
                    status=NotificationStatus.QUEUED,
                    requested_by=f"broadcast:{broadcast.pk}",
                )
                row.outcome, row.at = BroadcastRecipient.Outcome.NOTIFIED, now
                notified.append(row.notification.pk)
            row.save()
    Broadcast.objects.filter(pk=broadcast.pk).update(
        processed=F("processed") + len(notified) + capped, capped=F("capped") + capped
    )
    # a batch that died after notifying re-dispatches its own notifications (idempotent)
    again = list(
        Notification.objects.filter(
            broadcast=broadcast,
            pk__in=BroadcastRecipient.objects.filter(pk__in=ids).values("notification"),
            status__in=[NotificationStatus.QUEUED, NotificationStatus.DISPATCHING],
        ).values_list("pk", flat=True)
    )
    counts = notifications_dispatch(notification_ids=sorted(set(notified) | set(again)))
    _finish_if_done(broadcast.pk)
    return counts


def _finish_if_done(pk: int) -> None:
    pending = BroadcastRecipient.objects.filter(
        broadcast_id=pk, outcome=BroadcastRecipient.Outcome.PENDING
    ).exists()
    if not pending:
        Broadcast.objects.filter(pk=pk, state=Broadcast.State.SENDING).update(
            state=Broadcast.State.SENT, finished_at=timezone.now()
        )


def broadcast_stats(broadcast: Broadcast) -> dict:
    """Deliveries by outcome, users reached, openers and the open rate."""
    deliveries = Delivery.objects.filter(notification__broadcast=broadcast)
    by_status = dict(deliveries.values("status").annotate(n=Count("pk")).values_list("status", "n"))
    delivered_users = (
        deliveries.filter(status=DeliveryStatus.SENT)
        .values("notification__user_id")
        .distinct()
        .count()
    )
    opened = audiences.opens(OPEN_EVENT, [broadcast.pk]).get(broadcast.pk, 0)
    failed = by_status.get(DeliveryStatus.FAILED, 0) + by_status.get(DeliveryStatus.DEACTIVATED, 0)
    pending = by_status.get(DeliveryStatus.DEFERRED, 0) + by_status.get(DeliveryStatus.RETRYING, 0)
    return {
        "delivered": by_status.get(DeliveryStatus.SENT, 0),
        "failed": failed,
        "pending": pending,
        "deferred": by_status.get(DeliveryStatus.DEFERRED, 0),
        "delivered_users": delivered_users,
        "opened_users": opened,
        "open_rate": round(opened / delivered_users, 6) if delivered_users else None,
        "progress": round(broadcast.processed / broadcast.recipients, 6)
        if broadcast.recipients
        else (1.0 if broadcast.state == Broadcast.State.SENT else 0.0),
    }
