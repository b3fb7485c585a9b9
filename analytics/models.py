"""The Django models of the analytics app (app label `analytics`), defined in its sub-packages
and gathered here so Django finds them."""

from analytics.insights.models import ModelKind, ModelVersion, TrainingRun

__all__ = ["ModelKind", "ModelVersion", "TrainingRun"]
