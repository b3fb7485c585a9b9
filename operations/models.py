"""Operations tables: alert rules, the alert episodes Alertmanager posts, and the pipeline's
run-time settings that people and alert actions change.

The tables were created by the core app (label `platform_site`) and keep their names; the
models moved here with the operations domain (migration 0001 moves state only).
"""

from django.db import models


class AlertAction(models.TextChoices):
    AUTO_ROLLBACK = "auto_rollback", "auto rollback"
    SCALE_UP = "scale_up", "scale up"
    COST_OPTIMIZATION = "cost_optimization", "cost optimization"
    RECORD_ONLY = "record_only", "record only"


class AlertRule(models.Model):
    """What a firing Prometheus alert (matched by `alertname`) makes the platform do."""

    alertname = models.CharField(max_length=200, unique=True)
    action = models.CharField(max_length=30, choices=AlertAction.choices)
    enabled = models.BooleanField(default=True, help_text="disabled rules only record alerts")
    description = models.TextField(blank=True)
    scale_namespace = models.CharField(
        max_length=63, default="book2video-production", help_text="scale up: Deployment namespace"
    )
    scale_deployment = models.CharField(
        max_length=63, default="video-processing-workers", help_text="scale up: Deployment name"
    )
    scale_step = models.PositiveIntegerField(default=2, help_text="scale up: replicas added")
    scale_ceiling = models.PositiveIntegerField(
        default=50, help_text="scale up: never more replicas than this"
    )
    setting_key = models.CharField(
        max_length=100,
        default="ai_quality_tier",
        help_text="cost optimization: the platform setting stepped to its cheaper option",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "platform_site_alertrule"
        ordering = ["alertname"]

    def __str__(self) -> str:
        return f"{self.alertname} → {self.get_action_display()}"


class AlertOutcome(models.TextChoices):
    PENDING = "pending", "pending"
    ACTED = "acted", "acted"
    NOTHING_TO_DO = "nothing_to_do", "nothing to do"
    FAILED = "failed", "failed"
    RECORDED = "recorded", "recorded only"


class AlertStatus(models.TextChoices):
    FIRING = "firing"
    RESOLVED = "resolved"


class Alert(models.Model):
    """One firing episode of an alert: Alertmanager's fingerprint and start time.

    Alertmanager repeats a firing alert until it resolves; every repeat lands on this row, so the
    action runs once per episode.
    """

    fingerprint = models.CharField(max_length=64)
    starts_at = models.DateTimeField()
    alertname = models.CharField(max_length=200, db_index=True)
    status = models.CharField(max_length=10, choices=AlertStatus.choices)
    severity = models.CharField(max_length=50, blank=True)
    labels = models.JSONField(default=dict)
    annotations = models.JSONField(default=dict, blank=True)
    generator_url = models.URLField(max_length=1000, blank=True)
    rule = models.ForeignKey(AlertRule, null=True, blank=True, on_delete=models.SET_NULL)
    action = models.CharField(max_length=30, choices=AlertAction.choices, blank=True)
    outcome = models.CharField(
        max_length=20, choices=AlertOutcome.choices, default=AlertOutcome.PENDING
    )
    outcome_detail = models.TextField(blank=True)
    acted_at = models.DateTimeField(null=True, blank=True)
    received_count = models.PositiveIntegerField(default=1)
    first_received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    last_received_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    # Cost optimization: the value it replaced, so that a person can put it back.
    previous_value = models.CharField(max_length=100, blank=True)
    reverted_at = models.DateTimeField(null=True, blank=True)
    reverted_by_label = models.CharField(max_length=200, blank=True)

    class Meta:
        db_table = "platform_site_alert"
        ordering = ["-first_received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["fingerprint", "starts_at"], name="one_alert_episode")
        ]

    def __str__(self) -> str:
        return f"{self.alertname} {self.fingerprint} ({self.status})"

    @property
    def can_revert(self) -> bool:
        return (
            self.action == AlertAction.COST_OPTIMIZATION
            and self.outcome == AlertOutcome.ACTED
            and bool(self.previous_value)
            and self.reverted_at is None
        )


class PlatformSetting(models.Model):
    """A setting of the video pipeline that people and alert actions change at run time.

    `options` run from the most expensive to the cheapest; the pipeline reads the current value
    through `GET /api/platform-settings/<key>/`.
    """

    key = models.SlugField(max_length=100, unique=True)
    value = models.CharField(max_length=100)
    options = models.JSONField(help_text="allowed values, most expensive first")
    description = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by_label = models.CharField(max_length=200, blank=True)

    class Meta:
        db_table = "platform_site_platformsetting"
        ordering = ["key"]

    def __str__(self) -> str:
        return f"{self.key} = {self.value}"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if not isinstance(self.options, list) or not all(isinstance(o, str) for o in self.options):
            raise ValidationError({"options": "a list of strings, most expensive first"})
        if self.value not in self.options:
            raise ValidationError({"value": f"must be one of {self.options}"})

    def cheaper_option(self) -> str | None:
        position = self.options.index(self.value) if self.value in self.options else -1
        return self.options[position + 1] if 0 <= position < len(self.options) - 1 else None
