"""Celery tasks of dashboards (queue `analytics`): interfaces to the services only."""

from celery import shared_task

from analytics.store.base import STORE_TASK_OPTIONS


@shared_task(name="analytics.refresh_dashboard", **STORE_TASK_OPTIONS)
def refresh_dashboard(dashboard_id: int) -> None:
    from analytics.dashboards.services import dashboard_refresh

    dashboard_refresh(dashboard_id=dashboard_id)  # recomputing twice is harmless
