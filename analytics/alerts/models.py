"""Alerts on a trend series (the trends analysis' parameters), their checks and the episodes
they fire and resolve, each with how its chat notification went."""

from __future__ import annotations

from django.db import models


class MetricAlert(models.Model):
    class Condition(models.TextChoices):
        ABOVE = "above", "value above the threshold"
        BELOW = "below", "value below the threshold"
        INCREASE = "increase", "rose by more than threshold % vs the previous period"
        DECREASE = "decrease", "fell by more than threshold % vs the previous period"

    class State(models.TextChoices):
        NEW = "new"  # not checked yet
        OK = "ok"
        FIRING = "firing"
        ERROR = "error"  # the check could not run (its parameters no longer validate)

    name = models.CharField(max_length=100, unique=True)
    # the trends analysis' query-string parameters (its date range is the alert's own)
    params = models.JSONField(default=dict)
    series = models.CharField(
        max_length=20, default="A", help_text="the series letter (A = the first event) or 'formula'"
    )
    breakdown_value = models.CharField(
        max_length=200, blank=True, help_text="with a breakdown: the value watched ($other too)"
    )
    condition = models.CharField(max_length=10, choices=Condition.choices)
    threshold = models.FloatField(help_text="a value, or a percentage for increase/decrease")
    running_period = models.BooleanField(
        default=False,
        help_text="check the period still running (partial) instead of the last complete one",
    )
    chat_destination = models.CharField(
        max_length=63, blank=True, help_text="a chat webhook (a deployments alert provider)"
    )
    enabled = models.BooleanField(default=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.NEW)
    state_since = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_period = models.DateField(null=True, blank=True)
    last_value = models.FloatField(null=True, blank=True)
    last_previous = models.FloatField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def relative(self) -> bool:
        return self.condition in (self.Condition.INCREASE, self.Condition.DECREASE)


class MetricAlertCheck(models.Model):
    """One check: the period measured, its value and the previous one, whether it breached."""

    alert = models.ForeignKey(MetricAlert, on_delete=models.CASCADE, related_name="checks")
    checked_at = models.DateTimeField()
    period = models.DateField(null=True)
    value = models.FloatField(null=True)
    previous = models.FloatField(null=True)
    change = models.FloatField(null=True, help_text="relative change vs previous, as a fraction")
    breached = models.BooleanField(default=False)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-checked_at", "-id"]
        indexes = [models.Index(fields=["alert", "-checked_at"], name="metricalert_check_recent")]

    def __str__(self) -> str:
        return f"{self.alert_id} at {self.checked_at:%Y-%m-%d %H:%M}: {self.value}"


class MetricAlertEvent(models.Model):
    """An alert fired (a breach began) or resolved (the series came back)."""

    class Kind(models.TextChoices):
        FIRED = "fired"
        RESOLVED = "resolved"

    class Chat(models.TextChoices):
        NONE = "none"  # no chat destination: in-app only
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed"  # refused for good, or retries ran out

    alert = models.ForeignKey(MetricAlert, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    at = models.DateTimeField()
    period = models.DateField(null=True)
    value = models.FloatField(null=True)
    previous = models.FloatField(null=True)
    message = models.CharField(max_length=500)
    chat = models.CharField(max_length=10, choices=Chat.choices, default=Chat.NONE)
    chat_detail = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return self.message
