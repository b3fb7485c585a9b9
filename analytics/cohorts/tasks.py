"""Celery tasks of saved cohorts (queue `analytics`): interfaces to the services only."""

from celery import shared_task

from analytics.store.base import STORE_TASK_OPTIONS
from core.queues import Queue


@shared_task(name="analytics.compute_cohort", **STORE_TASK_OPTIONS)
def compute_cohort(cohort_id: int, trigger: str = "schedule") -> None:
    from analytics.cohorts.services import cohort_compute

    cohort_compute(cohort_id=cohort_id, trigger=trigger)  # each run writes its own version


@shared_task(name="analytics.compute_cohorts", queue=Queue.ANALYTICS, acks_late=True)
def compute_cohorts() -> None:
    from analytics.cohorts.services import cohorts_compute_all

    cohorts_compute_all(trigger="schedule")
