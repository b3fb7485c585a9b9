"""The insight models' registry kept in the database: model versions and their training runs."""

from django.db import models
from django.db.models import Q


class ModelKind(models.TextChoices):
    CHURN = "churn", "Churn probability"
    LTV = "ltv", "Lifetime value (revenue over the horizon)"
    CONVERSION = "conversion", "Free → paid conversion"


class ModelVersion(models.Model):
    """One trained model: its training window, validation metrics and artifact (joblib)."""

    kind = models.CharField(max_length=20, choices=ModelKind.choices)
    version = models.PositiveIntegerField()
    trained_at = models.DateTimeField(auto_now_add=True)
    reference_at = models.DateTimeField(help_text="validation snapshot date (labels after it)")
    window_days = models.PositiveIntegerField()
    horizon_days = models.PositiveIntegerField()
    train_rows = models.PositiveIntegerField()
    validation_rows = models.PositiveIntegerField()
    metrics = models.JSONField(default=dict)
    artifact = models.CharField(max_length=500)
    is_active = models.BooleanField(default=False)
    activation_note = models.CharField(max_length=300, blank=True)
    triggered_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["kind", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "version"], name="modelversion_kind_version"),
            models.UniqueConstraint(
                fields=["kind"], condition=Q(is_active=True), name="modelversion_one_active"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} v{self.version}"


class TrainingRun(models.Model):
    """A retrain of one kind, from queued to done; at most one unfinished run per kind."""

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    class Stage(models.TextChoices):
        QUEUED = "queued"
        EXTRACTING = "extracting"
        TRAINING = "training"
        VALIDATING = "validating"
        SCORING = "scoring"
        DONE = "done"

    kind = models.CharField(max_length=20, choices=ModelKind.choices)
    state = models.CharField(max_length=20, choices=State.choices, default=State.QUEUED)
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    triggered_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind"],
                condition=Q(state__in=["queued", "running"]),
                name="trainingrun_one_unfinished_per_kind",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} retrain {self.pk} ({self.state})"

    @property
    def is_finished(self) -> bool:
        return self.state in (self.State.SUCCEEDED, self.State.FAILED)
