"""Celery tasks of the insight models (queue `ml`): interfaces to the services only."""

from celery import shared_task

from core.queues import Queue


@shared_task(
    name="analytics.ml_retrain", queue=Queue.ML, acks_late=True, reject_on_worker_lost=True
)
def retrain(run_id: int) -> None:
    from analytics.insights.services import training_run_execute

    training_run_execute(run_id=run_id)  # idempotent: a run that is not queued is left alone


@shared_task(name="analytics.ml_retrain_all", queue=Queue.ML, acks_late=True)
def retrain_all() -> None:
    from analytics.insights.services import retrain_all as start_all

    start_all(trigger="schedule:weekly")


@shared_task(name="analytics.ml_score_users", queue=Queue.ML, acks_late=True)
def score_users() -> None:
    from analytics.insights.scoring import score_all

    score_all()
