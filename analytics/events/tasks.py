"""Celery tasks of event capture (take ids, call one service)."""

from celery import shared_task

from core.queues import Queue


@shared_task(name="analytics.events_flush_stale", queue=Queue.ANALYTICS, acks_late=True)
def events_flush_stale() -> int:
    """Safety net next to the events_writer process: writes entries a dead writer left pending,
    and everything buffered when no writer process is alive (a deployment running only Celery)."""
    from analytics.events.services import events_flush_stale as flush

    return flush()
