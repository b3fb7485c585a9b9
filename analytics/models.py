"""The Django models of the analytics app (app label `analytics`), defined in its sub-packages
and gathered here so Django finds them."""

from analytics.alerts.models import MetricAlert, MetricAlertCheck, MetricAlertEvent
from analytics.cohorts.models import Cohort, CohortSize
from analytics.dashboards.models import Dashboard, Tile
from analytics.insights.models import ModelKind, ModelVersion, TrainingRun

__all__ = [
    "Cohort",
    "CohortSize",
    "Dashboard",
    "MetricAlert",
    "MetricAlertCheck",
    "MetricAlertEvent",
    "ModelKind",
    "ModelVersion",
    "Tile",
    "TrainingRun",
]
