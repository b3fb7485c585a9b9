"""Celery tasks of dashboards (queue `analytics`): interfaces to the services only."""

from celery import shared_task

from analytics.store.base import StoreUnavailable
from core.queues import Queue


@shared_task(
    name="analytics.refresh_dashboard",
    queue=Queue.ANALYTICS,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(StoreUnavailable,),
    retry_backoff=True,
    max_retries=5,
)
def refresh_dashboard(dashboard_id: int) -> None:
    from analytics.dashboards.services import dashboard_refresh

    dashboard_refresh(dashboard_id=dashboard_id)  # recomputing twice is harmless
