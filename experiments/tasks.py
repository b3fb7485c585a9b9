"""Celery tasks of the experiments area: the hourly monitor and one evaluation per experiment."""

from celery import shared_task
from django.db import transaction

from analytics.store.base import STORE_TASK_OPTIONS
from core.queues import Queue
from experiments.services import experiment_evaluate, experiments_to_monitor, holdouts_end_planned


@shared_task(name="experiments.evaluate_experiment", **STORE_TASK_OPTIONS)
def evaluate_experiment(experiment_id: int) -> None:
    experiment_evaluate(experiment_id=experiment_id)  # idempotent


@shared_task(name="experiments.monitor_experiments", queue=Queue.ANALYTICS, acks_late=True)
def monitor_experiments() -> None:
    """Hourly (beat): fan out one evaluation per running experiment; end the holdouts whose
    planned end has passed."""
    holdouts_end_planned()
    for experiment_id in experiments_to_monitor():
        transaction.on_commit(lambda pk=experiment_id: evaluate_experiment.delay(pk))
