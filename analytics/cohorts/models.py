"""Saved cohorts and the history of their sizes. Members live in the analytics store
(`cohort_members`, one set per computed version); `version` names the set analyses read."""

from django.db import models


class Cohort(models.Model):
    class Kind(models.TextChoices):
        DYNAMIC = "dynamic", "Behavioural (recomputed)"
        STATIC = "static", "Static list"

    class State(models.TextChoices):
        NEW = "new"
        QUEUED = "queued"
        COMPUTING = "computing"
        READY = "ready"
        FAILED = "failed"

    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(max_length=500, blank=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    definition = models.JSONField(default=dict, blank=True)
    # the version analyses read (0: none yet) and the last one handed out to a computation
    version = models.PositiveIntegerField(default=0)
    last_version = models.PositiveIntegerField(default=0)
    size = models.PositiveIntegerField(null=True, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.NEW)
    error = models.CharField(max_length=500, blank=True)
    computed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class CohortSize(models.Model):
    """One computed version of a cohort: its size and how long the computation took."""

    cohort = models.ForeignKey(Cohort, on_delete=models.CASCADE, related_name="sizes")
    version = models.PositiveIntegerField()
    size = models.PositiveIntegerField()
    computed_at = models.DateTimeField()
    seconds = models.FloatField()
    trigger = models.CharField(max_length=50)

    class Meta:
        ordering = ["-computed_at", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["cohort", "version"], name="cohortsize_one_per_version")
        ]

    def __str__(self) -> str:
        return f"{self.cohort_id} v{self.version}: {self.size}"
