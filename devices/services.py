"""Every write of the devices area: registrations, notifications, fan-out, retries, pruning."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from core.errors import DomainError, InvalidRequest, Unprocessable
from core.services import actor_label, audit_record
from devices import rendering
from devices.models import (
    PENDING_STATUSES,
    DeactivationReason,
    Delivery,
    DeliveryStatus,
    Device,
    DeviceLink,
    Notification,
    NotificationStatus,
    NotificationType,
    Platform,
)
from devices.providers import Outcome, ProviderNotConfigured, PushMessage, SendResult, provider_for
from devices.validation import check_locale, check_subscription, check_timezone, check_token

log = logging.getLogger(__name__)

CHUNK = 1000  # devices per provider batch and per bulk insert
CLAIM_LEASE = timedelta(minutes=10)  # a claimed fan-out or retry not finished by then is redone
MAX_RETRY_DELAY = 3600.0
MAX_RETRY_AFTER = 24 * 3600.0


class DeviceInactive(DomainError):
    code = "device_inactive"


class NotYourDevice(DomainError):
    """A publishable key tried to move or unregister a registration it cannot prove it holds."""

    status_code = 403
    code = "forbidden"


def _trusted(by) -> bool:
    """Staff, the system and secret keys may move any device; publishable keys must prove
    possession of the registration."""
    from core.api_keys import KeyKind
    from core.models import ApiKey

    return not isinstance(by, ApiKey) or by.kind == KeyKind.SECRET


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _holds(device: Device, *, registration_secret: str | None, auth: str | None) -> bool:
    """Proof of possession: the registration secret handed out at registration, or (Web Push)
    the subscription's auth secret, which only the subscribing browser knows."""
    if (
        registration_secret
        and device.secret_hash
        and hmac.compare_digest(_secret_hash(registration_secret), device.secret_hash)
    ):
        return True
    return bool(
        auth
        and device.platform == Platform.WEB
        and device.auth
        and hmac.compare_digest(auth.encode(), device.auth.encode())
    )


# --- registry ---------------------------------------------------------------------------


def device_register(
    *,
    user_id: str,
    platform: str,
    token: str | None = None,
    subscription: dict | None = None,
    app_version: str = "",
    os_version: str = "",
    locale: str = "",
    timezone_name: str = "",
    registration_secret: str | None = None,
    by=None,
) -> tuple[Device, bool]:
    """Upsert a device by its token or endpoint: (device, created). Re-registering reactivates
    it; registering it under another user moves it (the old link ends, audited).

    A move asked by a publishable key needs proof of possession (`registration_secret`, or for
    Web Push the subscription's own auth secret), else NotYourDevice. A new or moved device
    gets a fresh secret, set on `device.registration_secret` (shown once, stored hashed)."""
    if platform not in Platform.values:
        raise InvalidRequest("platform", f"must be one of {', '.join(Platform.values)}")
    fields = {
        "user_id": user_id,
        "platform": platform,
        "app_version": app_version,
        "os_version": os_version,
        "locale": check_locale(locale),
        "timezone": check_timezone(timezone_name),
    }
    if platform == Platform.WEB:
        if not subscription:
            raise Unprocessable("subscription", "is required for platform web")
        endpoint, p256dh, auth = check_subscription(subscription)
        lookup = {"endpoint": endpoint}
        fields.update(p256dh=p256dh, auth=auth)
    else:
        if not token:
            raise Unprocessable("token", f"is required for platform {platform}")
        lookup = {"token": check_token(platform, token)}
    try:
        return _device_upsert(lookup=lookup, fields=fields, by=by, proof=registration_secret)
    except IntegrityError:
        # Two first registrations of one token raced; the loser updates the winner's row.
        return _device_upsert(lookup=lookup, fields=fields, by=by, proof=registration_secret)


@transaction.atomic
def _device_upsert(*, lookup: dict, fields: dict, by, proof: str | None) -> tuple[Device, bool]:
    now = timezone.now()
    device = Device.objects.select_for_update().filter(**lookup).first()
    new_secret = secrets.token_urlsafe(24)
    if device is None:
        with transaction.atomic():  # savepoint: a racing insert raises here, not later
            device = Device.objects.create(
                **lookup, **fields, last_seen_at=now, secret_hash=_secret_hash(new_secret)
            )
        DeviceLink.objects.create(device=device, user_id=device.user_id, started_at=now)
        device.registration_secret = new_secret
        return device, True
    moved = device.user_id != fields["user_id"]
    # A subscription's keys change only with a new endpoint: changing them in place (which
    # would break the browser's pushes) needs the same proof as a move.
    rekeyed = device.platform == Platform.WEB and fields.get("auth") != device.auth
    if (
        (moved or rekeyed)
        and not _trusted(by)
        and not _holds(device, registration_secret=proof, auth=fields.get("auth"))
    ):
        raise NotYourDevice(
            "this token or subscription is registered to another user; moving it needs a "
            "secret key or the registration_secret given when it was registered"
        )
    device.registration_secret = None
    if moved or not device.secret_hash:
        device.secret_hash = _secret_hash(new_secret)
        device.registration_secret = new_secret
    if moved:
        DeviceLink.objects.filter(device=device, ended_at__isnull=True).update(ended_at=now)
    if moved or not device.is_active:  # deactivation ended the link; a new one starts
        DeviceLink.objects.create(device=device, user_id=fields["user_id"], started_at=now)
    if moved:
        audit_record(
            actor=by,
            action="device.move",
            target=device,
            detail=f"from user {device.user_id} to user {fields['user_id']}",
        )
    for name, value in fields.items():
        setattr(device, name, value)
    device.is_active = True
    device.deactivated_at = None
    device.deactivation_reason = ""
    device.deactivation_detail = ""
    device.last_seen_at = now
    device.save()
    return device, False


def device_unregister(
    *,
    token: str | None = None,
    endpoint: str | None = None,
    registration_secret: str | None = None,
    auth: str | None = None,
    by=None,
) -> Device:
    """The app gave up its token or subscription. Raises Device.DoesNotExist when unknown.

    A publishable key must prove possession (registration_secret, or the Web Push auth
    secret) of a device registered with a secret; else NotYourDevice."""
    device = Device.objects.get(token=token) if token else Device.objects.get(endpoint=endpoint)
    if (
        not _trusted(by)
        and (device.secret_hash or device.platform == Platform.WEB)
        and not _holds(device, registration_secret=registration_secret, auth=auth)
    ):
        raise NotYourDevice(
            "unregistering this device needs its registration_secret (or, for Web Push, the "
            "subscription's auth secret) or a secret key"
        )
    return device_deactivate(device=device, reason=DeactivationReason.UNREGISTERED)


def device_deactivate(
    *, device: Device, reason: str, detail: str = "", by=None, now: datetime | None = None
) -> Device:
    now = now or timezone.now()
    updated = Device.objects.filter(pk=device.pk, is_active=True).update(
        is_active=False,
        deactivated_at=now,
        deactivation_reason=reason,
        deactivation_detail=detail[:300],
    )
    if updated:
        DeviceLink.objects.filter(device=device, ended_at__isnull=True).update(ended_at=now)
        if by is not None:
            audit_record(actor=by, action="device.deactivate", target=device, detail=detail)
    device.refresh_from_db()
    return device


def devices_prune(*, now: datetime | None = None) -> dict[str, int]:
    """Deactivate devices unseen for PUSH_STALE_AFTER_DAYS; delete devices inactive for
    PUSH_DELETE_INACTIVE_AFTER_DAYS (with their delivery history)."""
    now = now or timezone.now()
    stale_before = now - timedelta(days=settings.PUSH_STALE_AFTER_DAYS)
    stale = Device.objects.filter(is_active=True, last_seen_at__lt=stale_before)
    stale_ids = list(stale.values_list("pk", flat=True))
    Device.objects.filter(pk__in=stale_ids).update(
        is_active=False,
        deactivated_at=now,
        deactivation_reason=DeactivationReason.STALE,
        deactivation_detail=f"not seen for {settings.PUSH_STALE_AFTER_DAYS} days",
    )
    DeviceLink.objects.filter(device_id__in=stale_ids, ended_at__isnull=True).update(ended_at=now)
    delete_before = now - timedelta(days=settings.PUSH_DELETE_INACTIVE_AFTER_DAYS)
    _, per_model = Device.objects.filter(is_active=False, deactivated_at__lt=delete_before).delete()
    counts = {"deactivated": len(stale_ids), "deleted": per_model.get("devices.Device", 0)}
    if any(counts.values()):
        log.info("pruned devices: %s", counts)
    return counts


# --- notifications ----------------------------------------------------------------------


def notification_create(
    *,
    user_id: str,
    type: str,
    data: dict | None = None,
    send_at: datetime | None = None,
    idempotency_key: str | None = None,
    by=None,
) -> tuple[Notification, bool]:
    """Record a notification for a user and enqueue its fan-out (at once, or at send_at).
    A repeated idempotency key returns the first notification: (notification, created)."""
    from devices.tasks import dispatch_notification

    if type not in NotificationType.single_user():
        choices = ", ".join(NotificationType.single_user())
        raise InvalidRequest("type", f"must be one of {choices}")
    from core.models import ApiKey

    api_key = by if isinstance(by, ApiKey) else None
    if idempotency_key:
        existing = Notification.objects.filter(
            idempotency_key=idempotency_key, api_key=api_key
        ).first()
        if existing is not None:
            return existing, False
    now = timezone.now()
    scheduled = send_at is not None and send_at > now
    try:
        with transaction.atomic():
            notification = Notification.objects.create(
                user_id=user_id,
                type=type,
                data=data or {},
                send_at=send_at,
                idempotency_key=idempotency_key or None,
                status=NotificationStatus.SCHEDULED if scheduled else NotificationStatus.QUEUED,
                requested_by=actor_label(by) if by is not None else "",
                api_key=api_key,
            )
    except IntegrityError:
        # The same key arrived twice at once: the first one stored wins.
        return Notification.objects.get(idempotency_key=idempotency_key, api_key=api_key), False
    if not scheduled:
        # Scheduled ones are picked up by the periodic `devices.send_due` at send_at: a Celery
        # countdown that long would outlive the Redis visibility timeout and run twice.
        transaction.on_commit(lambda: dispatch_notification.delay(notification.pk))
    return notification, True


def notification_send_test(*, device: Device, by) -> Notification:
    """An engineer's test push to one device, through the configured backend."""
    from devices.tasks import dispatch_notification

    if not device.is_active:
        raise DeviceInactive(f"device {device.pk} is inactive; a test would not be sent")
    notification = Notification.objects.create(
        user_id=device.user_id,
        type=NotificationType.VIDEO_COMPLETED,
        data={"title": "Test notification", "test": True},
        target_device=device,
        requested_by=actor_label(by) if by is not None else "",
    )
    audit_record(actor=by, action="device.test_notification", target=device)
    transaction.on_commit(lambda: dispatch_notification.delay(notification.pk))
    return notification


def notifications_dispatch(
    *, notification_ids: list[int], now: datetime | None = None
) -> dict[str, int]:
    """Fan due notifications out to their users' active devices, one provider per platform,
    recording one delivery per device. Idempotent: a notification is claimed first, and a
    redone fan-out skips devices that already have a delivery."""
    now = now or timezone.now()
    claimable = Q(status__in=[NotificationStatus.QUEUED, NotificationStatus.SCHEDULED]) | Q(
        status=NotificationStatus.DISPATCHING, claimed_at__lt=now - CLAIM_LEASE
    )
    due = Q(send_at__isnull=True) | Q(send_at__lte=now)
    Notification.objects.filter(claimable & due, pk__in=notification_ids).update(
        status=NotificationStatus.DISPATCHING, claimed_at=now
    )
    # The claim timestamp is this call's token: a racing call claims nothing it can see here.
    notifications = list(
        Notification.objects.filter(
            pk__in=notification_ids, status=NotificationStatus.DISPATCHING, claimed_at=now
        )
    )
    counts: dict[str, int] = defaultdict(int)
    if not notifications:
        return dict(counts)
    devices_by_user = _active_devices(notifications)
    done = set(
        Delivery.objects.filter(notification__in=notifications).values_list(
            "notification_id", "device_id"
        )
    )
    renderer = rendering.Renderer()
    quiet = QuietHours.from_settings()
    pending: list[tuple[Notification, Device]] = []
    reached: set[int] = set()
    for notification in notifications:
        for device in devices_by_user.get(notification.user_id, ()):
            if notification.target_device_id and device.pk != notification.target_device_id:
                continue
            reached.add(notification.pk)
            if (notification.pk, device.pk) not in done:
                pending.append((notification, device))
    deferred, ready = [], []
    for notification, device in pending:
        resume = quiet.resume_at(device, notification.type, now)
        (deferred if resume else ready).append((notification, device, resume))
    _record(
        [
            DeliveryRow(
                notification_id=n.pk,
                device=d,
                provider=_provider_name(d.platform),
                status=DeliveryStatus.DEFERRED,
                next_attempt_at=resume,
            )
            for n, d, resume in deferred
        ]
    )
    if deferred:
        counts[DeliveryStatus.DEFERRED] += len(deferred)
    for platform, group in _by_platform(ready).items():
        for start in range(0, len(group), CHUNK):
            chunk = group[start : start + CHUNK]
            messages = [(d, renderer.message(n, d)) for n, d, _ in chunk]
            results = _send(platform, messages)
            deliveries = [
                _delivery_from(n, d, results[i], attempts=1, now=now)
                for i, (n, d, _) in enumerate(chunk)
            ]
            _record(deliveries)
            _deactivate_gone(deliveries, now=now)
            for delivery in deliveries:
                counts[delivery.status] += 1
    finished = timezone.now()
    # Two UPDATEs, not a per-row bulk_update: the fan-out's own cost must stay per device.
    for status, pks in (
        (NotificationStatus.DISPATCHED, [n.pk for n in notifications if n.pk in reached]),
        (NotificationStatus.NO_DEVICES, [n.pk for n in notifications if n.pk not in reached]),
    ):
        if pks:
            Notification.objects.filter(pk__in=pks).update(status=status, dispatched_at=finished)
    return dict(counts)


def notifications_send_due(*, now: datetime | None = None, limit: int = 5000) -> dict[str, int]:
    """Periodic: fan out scheduled notifications whose send_at has come (and any fan-out whose
    worker died), then retry due deliveries."""
    now = now or timezone.now()
    due = (
        Notification.objects.filter(
            Q(status=NotificationStatus.SCHEDULED, send_at__lte=now)
            | Q(status=NotificationStatus.QUEUED, created_at__lt=now - CLAIM_LEASE)
            | Q(status=NotificationStatus.DISPATCHING, claimed_at__lt=now - CLAIM_LEASE)
        )
        .order_by("send_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    counts: dict[str, int] = defaultdict(int)
    ids = list(due)
    for start in range(0, len(ids), CHUNK):
        for key, value in notifications_dispatch(
            notification_ids=ids[start : start + CHUNK], now=now
        ).items():
            counts[key] += value
    for key, value in deliveries_retry_due(now=now, limit=limit).items():
        counts[f"retry_{key}"] += value
    return dict(counts)


def deliveries_retry_due(*, now: datetime | None = None, limit: int = 5000) -> dict[str, int]:
    """Attempt deliveries waiting for a retry or for the end of quiet hours, when due."""
    now = now or timezone.now()
    ids = list(
        Delivery.objects.filter(status__in=PENDING_STATUSES, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    if not ids:
        return {}
    lease = now + CLAIM_LEASE
    Delivery.objects.filter(
        pk__in=ids, status__in=PENDING_STATUSES, next_attempt_at__lte=now
    ).update(next_attempt_at=lease)
    claimed = list(
        Delivery.objects.filter(
            pk__in=ids, status__in=PENDING_STATUSES, next_attempt_at=lease
        ).select_related("notification", "device")
    )
    renderer = rendering.Renderer()
    counts: dict[str, int] = defaultdict(int)
    inactive = [d for d in claimed if not d.device.is_active]
    for delivery in inactive:
        delivery.status = DeliveryStatus.FAILED
        delivery.next_attempt_at = None
        delivery.response = f"device inactive ({delivery.device.deactivation_reason})"
    if inactive:
        counts[DeliveryStatus.FAILED] += len(inactive)
    active = [(d.notification, d.device, d) for d in claimed if d.device.is_active]
    for platform, group in _by_platform(active).items():
        for start in range(0, len(group), CHUNK):
            chunk = group[start : start + CHUNK]
            results = _send(platform, [(dev, renderer.message(n, dev)) for n, dev, _ in chunk])
            for (n, dev, delivery), result in zip(chunk, results, strict=True):
                fresh = _delivery_from(
                    n, dev, result, attempts=delivery.attempts + 1, now=timezone.now()
                )
                for name in ("provider", "status", "attempts", "status_code", "response"):
                    setattr(delivery, name, getattr(fresh, name))
                delivery.next_attempt_at, delivery.sent_at = fresh.next_attempt_at, fresh.sent_at
                counts[delivery.status] += 1
            _deactivate_gone([d for _, _, d in chunk], now=now)
    Delivery.objects.bulk_update(
        claimed,
        [
            "provider",
            "status",
            "attempts",
            "status_code",
            "response",
            "next_attempt_at",
            "sent_at",
            "updated_at",
        ],
    )
    return dict(counts)


# --- fan-out helpers --------------------------------------------------------------------


def _active_devices(notifications: list[Notification]) -> dict[str, list[Device]]:
    users = {n.user_id for n in notifications}
    by_user: dict[str, list[Device]] = defaultdict(list)
    for start in range(0, len(users), CHUNK):
        batch = list(users)[start : start + CHUNK]
        for device in Device.objects.filter(user_id__in=batch, is_active=True).order_by("pk"):
            by_user[device.user_id].append(device)
    return by_user


def _by_platform(items: list[tuple]) -> dict[str, list[tuple]]:
    groups: dict[str, list[tuple]] = defaultdict(list)
    for item in items:
        groups[item[1].platform].append(item)
    return groups


def _provider_name(platform: str) -> str:
    if settings.PUSH_BACKEND == "outbox":
        return "outbox"
    return {"web": "webpush", "android": "fcm", "ios": "apns"}[platform]


def _send(platform: str, messages: list[tuple[Device, PushMessage]]) -> list[SendResult]:
    try:
        provider = provider_for(platform)
    except ProviderNotConfigured as exc:
        # Our configuration, not the device: fail these deliveries, keep the devices.
        log.error("push provider for %s not configured: %s", platform, exc)
        return [SendResult(Outcome.FAILED, None, f"provider not configured: {exc}")] * len(messages)
    try:
        return provider.send_many(messages)
    finally:
        provider.close()


def retry_delay(attempts: int, retry_after: float | None) -> float:
    """Exponential backoff from PUSH_RETRY_BASE_SECONDS, never sooner than Retry-After."""
    delay = min(MAX_RETRY_DELAY, settings.PUSH_RETRY_BASE_SECONDS * 2 ** (attempts - 1))
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay


@dataclass
class DeliveryRow:
    """A delivery's outcome before it is stored: plain attributes, since building a model
    instance per device was a measurable part of a large fan-out."""

    notification_id: int
    device: Device
    provider: str
    status: str
    attempts: int = 0
    status_code: int | None = None
    response: str = ""
    next_attempt_at: datetime | None = None
    sent_at: datetime | None = None

    @property
    def device_id(self) -> int:
        return self.device.pk


def _delivery_from(
    notification: Notification, device: Device, result: SendResult, *, attempts: int, now
) -> DeliveryRow:
    row = DeliveryRow(
        notification_id=notification.pk,
        device=device,
        provider=_provider_name(device.platform),
        status=DeliveryStatus.FAILED,
        attempts=attempts,
        status_code=result.status_code,
        response=result.response[:2000],
    )
    if result.outcome is Outcome.SENT:
        row.status, row.sent_at = DeliveryStatus.SENT, now
    elif result.outcome is Outcome.GONE:
        row.status = DeliveryStatus.DEACTIVATED
    elif result.outcome is Outcome.RETRY and attempts < settings.PUSH_MAX_ATTEMPTS:
        row.status = DeliveryStatus.RETRYING
        row.next_attempt_at = now + timedelta(seconds=retry_delay(attempts, result.retry_after))
    elif result.outcome is Outcome.RETRY:
        row.response = f"gave up after {attempts} attempts: {row.response}"[:2000]
    return row


_DELIVERY_COLUMNS = (
    "notification_id",
    "device_id",
    "provider",
    "status",
    "attempts",
    "status_code",
    "response",
    "next_attempt_at",
    "sent_at",
    "created_at",
    "updated_at",
)


def _record(deliveries: list[DeliveryRow]) -> None:
    """Insert delivery rows; a redone fan-out meets the rows of the first one and the unique
    (notification, device) pair keeps one. One executemany instead of bulk_create: the ORM's
    per-field value preparation was most of the fan-out's time (see `bench devices`)."""
    if not deliveries:
        return
    adapt = connection.ops.adapt_datetimefield_value
    now = adapt(timezone.now())
    rows = [
        (
            d.notification_id,
            d.device_id,
            d.provider,
            d.status,
            d.attempts,
            d.status_code,
            d.response,
            adapt(d.next_attempt_at),
            adapt(d.sent_at),
            now,
            now,
        )
        for d in deliveries
    ]
    sql = (
        f"INSERT INTO {Delivery._meta.db_table} ({', '.join(_DELIVERY_COLUMNS)}) "
        f"VALUES ({', '.join(['%s'] * len(_DELIVERY_COLUMNS))}) "
        "ON CONFLICT (notification_id, device_id) DO NOTHING"
    )
    # One transaction for the batch: in autocommit every row would be its own commit.
    with transaction.atomic(), connection.cursor() as cursor:
        for start in range(0, len(rows), CHUNK):
            cursor.executemany(sql, rows[start : start + CHUNK])


def _deactivate_gone(deliveries: list, *, now) -> None:
    for delivery in deliveries:
        if delivery.status == DeliveryStatus.DEACTIVATED:
            device_deactivate(
                device=delivery.device,
                reason=DeactivationReason.PROVIDER,
                detail=f"{delivery.provider} {delivery.status_code or ''} {delivery.response}"[
                    :300
                ],
                now=now,
            )


class QuietHours:
    """A daily local-time window (e.g. 22:00-08:00) in which some types wait."""

    def __init__(self, start: time | None, end: time | None, types: set[str]):
        self.start, self.end, self.types = start, end, types

    @classmethod
    def from_settings(cls) -> QuietHours:
        spec = settings.PUSH_QUIET_HOURS.strip()
        if not spec:
            return cls(None, None, set())
        start, end = (time.fromisoformat(part.strip()) for part in spec.split("-"))
        return cls(start, end, set(settings.PUSH_QUIET_HOURS_TYPES))

    def _inside(self, t: time) -> bool:
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def resume_at(self, device: Device, type: str, now: datetime) -> datetime | None:
        """When the quiet hours holding this delivery end (UTC), or None to send now."""
        held = type in self.types or type == NotificationType.BROADCAST  # broadcasts always wait
        if self.start is None or not held or self.start == self.end:
            return None
        try:
            zone = zoneinfo.ZoneInfo(device.timezone or "UTC")
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            zone = zoneinfo.ZoneInfo("UTC")
        local = now.astimezone(zone)
        if not self._inside(local.time()):
            return None
        end_day = local.date() if local.time() < self.end else local.date() + timedelta(days=1)
        return datetime.combine(end_day, self.end, tzinfo=zone).astimezone(UTC)
