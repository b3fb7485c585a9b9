"""Demo devices across platforms with a delivery history (demo mode only, idempotent)."""

import json
import random
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from devices import services
from devices.models import (
    DeactivationReason,
    Delivery,
    Device,
    DeviceLink,
    Notification,
    NotificationType,
)

USERS = 80
PREFIX = "demo-"
VERSIONS = {
    "ios": ["3.0.2", "3.1.0", "3.2.0", "3.2.1"],
    "android": ["3.0.1", "3.1.0", "3.2.0", "3.2.1"],
    "web": ["2026.03", "2026.05", "2026.06"],
}
OS = {
    "ios": ["17.5", "18.1", "18.2"],
    "android": ["13", "14", "15"],
    "web": ["Chrome 131", "Firefox 133", "Safari 18"],
}
LOCALES = [
    ("en", "America/New_York"),
    ("en", "Europe/London"),
    ("pt-BR", "America/Sao_Paulo"),
    ("pt-BR", "America/Recife"),
    ("en", "Asia/Singapore"),
]
TITLES = ["Moby Dick", "Dom Casmurro", "Pride and Prejudice", "O Alienista", "Walden", "Dune"]
PROVIDER = {"ios": "apns", "android": "fcm", "web": "webpush"}


def _address(platform: str, rng: random.Random) -> dict:
    if platform == "ios":
        return {"token": secrets.token_hex(32)}
    if platform == "android":
        return {"token": f"{secrets.token_urlsafe(16)}:APA91b{secrets.token_urlsafe(90)}"}
    host = rng.choice(["fcm.googleapis.com/fcm/send", "updates.push.services.mozilla.com/wpush/v2"])
    return {
        "endpoint": f"https://{host}/{secrets.token_urlsafe(40)}",
        "p256dh": "B" + secrets.token_urlsafe(64)[:86],
        "auth": secrets.token_urlsafe(16)[:22],
    }


def seed(*, stdout) -> None:
    _seed_devices(stdout=stdout)
    _seed_broadcast(stdout=stdout)


BROADCAST_COHORT = "Active renderers"


def _seed_broadcast(*, stdout) -> None:
    """A sent broadcast to a demo cohort (analytics seeds it first), run here, not by a
    worker, so the Broadcasts page has counts on first start."""
    from core import audiences
    from devices.broadcasts import broadcast_create, broadcast_plan
    from devices.models import Broadcast

    cohorts = {name: pk for pk, name in audiences.choices()}
    if Broadcast.objects.exists() or BROADCAST_COHORT not in cohorts:
        return
    broadcast = broadcast_create(
        name="New video styles",
        cohort_id=cohorts[BROADCAST_COHORT],
        title="Three new video styles",
        body="Watercolour, noir and comic: try them on your next book.",
        by="demo",
    )
    Broadcast.objects.filter(pk=broadcast.pk).update(
        state=Broadcast.State.SENDING, started_at=timezone.now()
    )
    broadcast_plan(broadcast_id=broadcast.pk, inline=True)
    broadcast.refresh_from_db()
    stdout.write(f"devices: demo broadcast to {broadcast.recipients} users of {BROADCAST_COHORT!r}")


@transaction.atomic
def _seed_devices(*, stdout) -> None:
    if Device.objects.filter(user_id__startswith=PREFIX).exists():
        stdout.write("devices: demo devices already present")
        return
    rng = random.Random(9)
    now = timezone.now()
    devices = []
    for u in range(USERS):
        for _ in range(rng.choice([1, 1, 2, 2, 3])):
            platform = rng.choices(["ios", "android", "web"], weights=[4, 5, 2])[0]
            locale, tz = rng.choice(LOCALES)
            created = now - timedelta(days=rng.uniform(0, 88), hours=rng.uniform(0, 23))
            devices.append(
                (
                    Device(
                        user_id=f"{PREFIX}{1000 + u:06d}",
                        platform=platform,
                        **_address(platform, rng),
                        app_version=rng.choice(VERSIONS[platform]),
                        os_version=rng.choice(OS[platform]),
                        locale=locale,
                        timezone=tz,
                        last_seen_at=now - (now - created) * rng.uniform(0.0, 0.3),
                    ),
                    created,
                )
            )
    Device.objects.bulk_create([d for d, _ in devices])
    links = []
    for device, created in devices:
        Device.objects.filter(pk=device.pk).update(created_at=created)
        device.created_at = created
        links.append(DeviceLink(device=device, user_id=device.user_id, started_at=created))
    DeviceLink.objects.bulk_create(links)
    # Some devices went away: the app unregistered, or a provider said the token is dead.
    for device, created in rng.sample(devices, k=len(devices) // 6):
        ended = created + (now - created) * rng.uniform(0.3, 0.95)
        reason = rng.choice([DeactivationReason.UNREGISTERED, DeactivationReason.PROVIDER])
        detail = {
            "apns": 'apns 410 {"reason":"Unregistered"}',
            "fcm": "fcm 404 UNREGISTERED",
            "webpush": "webpush 410 subscription expired",
        }[PROVIDER[device.platform]]
        Device.objects.filter(pk=device.pk).update(
            is_active=False,
            deactivated_at=ended,
            deactivation_reason=reason,
            deactivation_detail=detail if reason == DeactivationReason.PROVIDER else "",
        )
    _history(rng, now)
    # A few fresh ones through the real fan-out path (outbox backend in demo mode).
    recent = [
        Notification.objects.create(
            user_id=f"{PREFIX}{1000 + u:06d}",
            type=NotificationType.VIDEO_COMPLETED,
            data={"title": rng.choice(TITLES)},
            requested_by="video-pipeline",
        )
        for u in range(5)
    ]
    services.notifications_dispatch(notification_ids=[n.pk for n in recent])
    stdout.write(
        f"devices: {len(devices)} demo devices, {Notification.objects.count()} notifications"
    )


def _history(rng: random.Random, now) -> None:
    """Past notifications with deliveries in every status a provider can cause."""
    devices = list(Device.objects.filter(user_id__startswith=PREFIX))
    by_user: dict[str, list[Device]] = {}
    for device in devices:
        by_user.setdefault(device.user_id, []).append(device)
    for i in range(160):
        user = rng.choice(list(by_user))
        kind = rng.choices(NotificationType.single_user(), weights=[6, 1, 2])[0]
        when = now - timedelta(days=rng.uniform(0.1, 30))
        data = {
            "title": rng.choice(TITLES),
            "reason": "The file could not be read.",
            "plan": "Pro",
            "renews_on": (when + timedelta(days=3)).date().isoformat(),
        }
        note = Notification.objects.create(
            user_id=user,
            type=kind,
            data=data,
            status="dispatched",
            requested_by="video-pipeline",
            dispatched_at=when,
            idempotency_key=f"demo-{i}",
        )
        Notification.objects.filter(pk=note.pk).update(created_at=when)
        rows = []
        for device in by_user[user]:
            if device.created_at > when or (device.deactivated_at and device.deactivated_at < when):
                continue
            if device.deactivation_reason == DeactivationReason.PROVIDER and (
                device.deactivated_at - when < timedelta(days=1)
            ):
                status = "deactivated"  # the delivery whose answer deactivated it
            else:
                status = rng.choices(["sent", "failed", "retrying"], weights=[94, 3, 3])[0]
            code = {
                "sent": {"apns": 200, "fcm": 200, "webpush": 201}[PROVIDER[device.platform]],
                "failed": 503,
                "retrying": 429,
                "deactivated": 410,
            }[status]
            rows.append(
                Delivery(
                    notification=note,
                    device=device,
                    provider=PROVIDER[device.platform],
                    status=status,
                    attempts={"failed": 5, "retrying": 2}.get(status, 1),
                    status_code=code,
                    response=json.dumps({"reason": "demo history"}),
                    sent_at=when if status == "sent" else None,
                    next_attempt_at=now + timedelta(minutes=10) if status == "retrying" else None,
                )
            )
        Delivery.objects.bulk_create(rows)
        Delivery.objects.filter(notification=note).update(created_at=when)
