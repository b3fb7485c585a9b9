"""Push registrations of the product's apps, the notifications sent to them and every delivery."""

import string

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q


class Platform(models.TextChoices):
    IOS = "ios", "iOS"
    ANDROID = "android", "Android"
    WEB = "web", "Web"


class DeactivationReason(models.TextChoices):
    UNREGISTERED = "unregistered", "unregistered by the app"
    PROVIDER = "provider", "rejected by the push provider"
    STAFF = "staff", "deactivated by staff"
    STALE = "stale", "not seen for too long"


class Device(models.Model):
    """One app installation that can receive pushes. A token belongs to one user at a time."""

    user_id = models.CharField(max_length=64, db_index=True, help_text="the product's user id")
    platform = models.CharField(max_length=10, choices=Platform.choices)
    # FCM/APNs token (ios, android) or Web Push subscription (web): exactly one of the two.
    token = models.CharField(max_length=512, null=True, blank=True, unique=True)
    endpoint = models.CharField(max_length=1024, null=True, blank=True, unique=True)
    p256dh = models.CharField(max_length=200, blank=True)
    auth = models.CharField(max_length=64, blank=True)
    app_version = models.CharField(max_length=40, blank=True)
    os_version = models.CharField(max_length=40, blank=True)
    locale = models.CharField(max_length=20, blank=True, default="en")
    timezone = models.CharField(max_length=64, blank=True, default="UTC")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField()
    deactivated_at = models.DateTimeField(null=True, blank=True)
    deactivation_reason = models.CharField(
        max_length=20, choices=DeactivationReason.choices, blank=True
    )
    deactivation_detail = models.CharField(max_length=300, blank=True)
    # SHA-256 of the registration secret handed to the app when it registered the device:
    # with a publishable key, moving the device to another user or unregistering it needs it.
    secret_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-last_seen_at"]
        indexes = [
            models.Index(fields=["user_id", "is_active"]),
            models.Index(fields=["is_active", "last_seen_at"]),
        ]
        constraints = [
            models.CheckConstraint(
                name="device_token_xor_subscription",
                condition=(
                    Q(platform="web", endpoint__isnull=False, token__isnull=True)
                    | (~Q(platform="web") & Q(token__isnull=False, endpoint__isnull=True))
                ),
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_platform_display()} device {self.pk} of user {self.user_id}"

    @property
    def address(self) -> str:
        """The token or endpoint, shortened for screens."""
        value = self.token or self.endpoint or ""
        return value if len(value) <= 28 else f"{value[:18]}…{value[-8:]}"

    @property
    def subscription(self) -> dict:
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


class DeviceLink(models.Model):
    """Which user a device belonged to and when: a token moving between users ends a link."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="links")
    user_id = models.CharField(max_length=64)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"device {self.device_id} of user {self.user_id} from {self.started_at:%Y-%m-%d}"


class NotificationType(models.TextChoices):
    VIDEO_COMPLETED = "VIDEO_COMPLETED", "video completed"
    PROCESSING_FAILED = "PROCESSING_FAILED", "processing failed"
    SUBSCRIPTION_REMINDER = "SUBSCRIPTION_REMINDER", "subscription reminder"
    BROADCAST = "BROADCAST", "broadcast"  # title and body from its Broadcast, no template

    @classmethod
    def single_user(cls) -> list[str]:
        """The types a caller may send to one user (broadcasts go to a cohort)."""
        return [t for t in cls.values if t != cls.BROADCAST]


def template_fields(text: str) -> list[str]:
    """Placeholder names in a template text; raises ValueError on a malformed one."""
    return [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]


class NotificationTemplate(models.Model):
    """Title and body of one notification type in one locale, e.g. 'Your video "{title}" is
    ready'. Placeholders are filled from the notification's data."""

    type = models.CharField(max_length=40, choices=NotificationType.choices)
    locale = models.CharField(max_length=20, help_text="e.g. en, pt-BR")
    title = models.CharField(max_length=200)
    body = models.TextField(max_length=1000)

    class Meta:
        ordering = ["type", "locale"]
        constraints = [
            models.UniqueConstraint(fields=["type", "locale"], name="one_template_per_locale")
        ]

    def __str__(self) -> str:
        return f"{self.type} ({self.locale})"

    def clean(self):
        for field in ("title", "body"):
            try:
                names = template_fields(getattr(self, field))
            except ValueError as exc:
                raise ValidationError({field: f"malformed placeholder: {exc}"}) from exc
            if any(not n.isidentifier() for n in names):
                raise ValidationError({field: "placeholders are plain names such as {title}"})
            # A format spec or conversion ({title:>999999999} pads to a gigabyte per render,
            # {title!r} shows quotes): only plain names are allowed.
            for _, name, spec, conversion in string.Formatter().parse(getattr(self, field)):
                if name is not None and (spec or conversion):
                    raise ValidationError(
                        {field: f"{{{name}}} takes no format spec or conversion; write {{{name}}}"}
                    )


class NotificationStatus(models.TextChoices):
    SCHEDULED = "scheduled"  # waits for send_at
    QUEUED = "queued"  # fan-out enqueued
    DISPATCHING = "dispatching"  # a worker claimed it (claimed_at) and is fanning it out
    DISPATCHED = "dispatched"  # one delivery per active device recorded
    NO_DEVICES = "no_devices"  # the user had no active device at fan-out


class Notification(models.Model):
    user_id = models.CharField(max_length=64, db_index=True)
    type = models.CharField(max_length=40, choices=NotificationType.choices)
    data = models.JSONField(default=dict, blank=True)
    send_at = models.DateTimeField(null=True, blank=True)
    # NULL (not "") when absent, so the per-key unique constraint ignores it.
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    status = models.CharField(
        max_length=20, choices=NotificationStatus.choices, default=NotificationStatus.QUEUED
    )
    requested_by = models.CharField(max_length=200, blank=True)
    # The key that asked for it: only that key reads it back (others get 404).
    api_key = models.ForeignKey(
        "platform_site.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A staff "send test notification" goes to this one device instead of all the user's.
    target_device = models.ForeignKey(
        Device, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # the push broadcast this notification is part of (one per recipient)
    broadcast = models.ForeignKey(
        "Broadcast", null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "send_at"])]
        constraints = [
            # Idempotency keys are per API key: one client cannot reach another's notification.
            models.UniqueConstraint(
                fields=["api_key", "idempotency_key"], name="one_notification_per_key_idempotency"
            )
        ]

    def __str__(self) -> str:
        return f"{self.type} #{self.pk} for user {self.user_id}"


class DeliveryStatus(models.TextChoices):
    DEFERRED = "deferred"  # waits for the end of quiet hours
    RETRYING = "retrying"  # a transient failure; next attempt at next_attempt_at
    SENT = "sent"
    FAILED = "failed"  # refused for good, or out of attempts; the device stays active
    DEACTIVATED = "deactivated"  # the provider said the device is gone; it was deactivated


PENDING_STATUSES = (DeliveryStatus.DEFERRED, DeliveryStatus.RETRYING)


class Delivery(models.Model):
    """One notification to one device through one provider, with what the provider answered."""

    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="deliveries"
    )
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="deliveries")
    provider = models.CharField(max_length=20)
    status = models.CharField(max_length=20, choices=DeliveryStatus.choices)
    attempts = models.PositiveSmallIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["notification", "device"], name="one_delivery_per_device"
            )
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"delivery {self.pk} ({self.status})"


class Broadcast(models.Model):
    """One push to every member of a saved cohort with an active device, fanned out in
    batches; opens come back as the app's `$push_opened` events naming it."""

    class State(models.TextChoices):
        DRAFT = "draft"
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"  # the audience could not be read

    name = models.CharField(max_length=100)
    cohort_id = models.PositiveIntegerField(help_text="the saved cohort sent to")
    cohort_name = models.CharField(max_length=100, blank=True)
    title = models.CharField(max_length=200)
    body = models.CharField(max_length=1000)
    state = models.CharField(max_length=10, choices=State.choices, default=State.DRAFT)
    error = models.CharField(max_length=500, blank=True)
    members = models.PositiveIntegerField(default=0, help_text="cohort members read")
    no_device = models.PositiveIntegerField(default=0, help_text="members without an active device")
    recipients = models.PositiveIntegerField(default=0, help_text="members with an active device")
    processed = models.PositiveIntegerField(default=0, help_text="recipients sent to or capped")
    capped = models.PositiveIntegerField(default=0, help_text="held back by the frequency cap")
    batches = models.PositiveIntegerField(default=0)
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class BroadcastRecipient(models.Model):
    """A member a broadcast reaches: one row per user, so a batch run twice sends once."""

    class Outcome(models.TextChoices):
        PENDING = "pending"
        NOTIFIED = "notified"
        CAPPED = "capped"

    broadcast = models.ForeignKey(Broadcast, on_delete=models.CASCADE, related_name="rows")
    user_id = models.CharField(max_length=64)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.PENDING)
    notification = models.OneToOneField(
        Notification, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["broadcast", "user_id"], name="one_row_per_recipient")
        ]
        indexes = [models.Index(fields=["user_id", "outcome", "at"])]

    def __str__(self) -> str:
        return f"{self.user_id} of broadcast {self.broadcast_id}"
