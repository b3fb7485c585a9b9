"""Dashboards and their tiles. A tile is one analysis of the registry (analytics/product/
registry.py) by name with its parameters, stored as the query string of its page."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import models

MAX_LAST_DAYS = 3 * 366


class Dashboard(models.Model):
    class Refresh(models.TextChoices):
        IDLE = "idle"
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(max_length=500, blank=True)
    # the one dashboard the analytics area opens on
    is_default = models.BooleanField(default=False)
    # date-range override applied to every tile: the last N days ending today, or fixed dates
    last_days = models.PositiveIntegerField(null=True, blank=True)
    date_from = models.DateField(null=True, blank=True)
    date_to = models.DateField(null=True, blank=True)
    refresh_state = models.CharField(max_length=10, choices=Refresh.choices, default=Refresh.IDLE)
    refresh_total = models.PositiveIntegerField(default=0)
    refresh_done = models.PositiveIntegerField(default=0)
    refresh_failed = models.PositiveIntegerField(default=0)
    refresh_started_at = models.DateTimeField(null=True, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-is_default", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=models.Q(is_default=True),
                name="dashboard_one_default",
            ),
            models.CheckConstraint(
                condition=~(models.Q(last_days__isnull=False) & models.Q(date_from__isnull=False)),
                name="dashboard_one_range_override",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.last_days is not None and (self.date_from or self.date_to):
            raise ValidationError({"last_days": "either the last N days or fixed dates, not both"})
        if self.last_days is not None and not 1 <= self.last_days <= MAX_LAST_DAYS:
            raise ValidationError({"last_days": f"between 1 and {MAX_LAST_DAYS}"})
        if bool(self.date_from) != bool(self.date_to):
            raise ValidationError({"date_from": "give both date_from and date_to, or neither"})
        if self.date_from and self.date_to:
            if self.date_from > self.date_to:
                raise ValidationError({"date_from": "must be on or before date_to"})
            if (self.date_to - self.date_from).days > MAX_LAST_DAYS:
                raise ValidationError({"date_from": "the range may span at most 3 years"})

    def range_override(self, today: dt.date | None = None) -> tuple[dt.date, dt.date] | None:
        """The (date_from, date_to) every tile is shown for, or None: each tile its own."""
        if self.last_days:
            today = today or dt.datetime.now(dt.UTC).date()
            return today - dt.timedelta(days=self.last_days - 1), today
        if self.date_from and self.date_to:
            return self.date_from, self.date_to
        return None

    @property
    def refreshing(self) -> bool:
        return self.refresh_state in (self.Refresh.QUEUED, self.Refresh.RUNNING)


class Tile(models.Model):
    dashboard = models.ForeignKey(Dashboard, on_delete=models.CASCADE, related_name="tiles")
    analysis = models.CharField(max_length=40)  # a registry name: "trends", "retention", ...
    params = models.JSONField(default=dict, blank=True)
    title = models.CharField(max_length=200, blank=True)
    position = models.PositiveIntegerField(default=0)
    # the last refresh of this tile: when it ran and what went wrong, if anything
    refreshed_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.title or self.analysis
