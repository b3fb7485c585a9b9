"""The Celery app, its queues and the one beat schedule every periodic task is declared in."""

import os
from enum import StrEnum

from celery import Celery, signals
from celery.schedules import crontab
from kombu import Queue as KombuQueue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_site.settings")


class Queue(StrEnum):
    ROLLOUTS = "rollouts"
    ANALYTICS = "analytics"
    ML = "ml"
    NOTIFICATIONS = "notifications"
    DEFAULT = "default"


app = Celery("platform_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [KombuQueue(q.value) for q in Queue]
app.autodiscover_tasks()
app.autodiscover_tasks(["analytics.events", "analytics.insights"])  # their tasks.py

# Periodic tasks: declared here only. django-celery-beat's DatabaseScheduler copies them into
# the database, where admins can edit the schedule.
BEAT_SCHEDULE: dict[str, dict] = {
    "experiments-monitor-hourly": {
        "task": "experiments.monitor_experiments",
        "schedule": 3600.0,
        "options": {"queue": Queue.ANALYTICS.value},
    },
    # The events_writer process flushes within a second; this catches what it cannot.
    "analytics-events-flush-stale": {
        "task": "analytics.events_flush_stale",
        "schedule": 30.0,
        "options": {"queue": Queue.ANALYTICS.value, "expires": 25},
    },
    "refresh-business-metrics": {
        "task": "platform_site.refresh_business_metrics",
        "schedule": float(os.environ.get("BUSINESS_METRICS_INTERVAL", "60")),
        "options": {"queue": Queue.ANALYTICS.value, "expires": 55},
    },
    # Rollouts whose planned tick is overdue (a killed worker) resume from their saved state.
    "deployments.resume_stuck_rollouts": {
        "task": "deployments.resume_stuck_rollouts",
        "schedule": float(os.environ.get("ROLLOUT_SAFETY_NET_SECONDS", "15")),
        "options": {"queue": Queue.ROLLOUTS.value, "expires": 14},
    },
    # Scheduled notifications at send_at, retries after backoff, reminders after quiet hours.
    "devices.send_due": {"task": "devices.send_due", "schedule": 15.0},
    "devices.prune_devices": {"task": "devices.prune_devices", "schedule": 6 * 3600.0},
    "analytics-ml-retrain-weekly": {
        "task": "analytics.ml_retrain_all",
        "schedule": crontab(minute=0, hour=3, day_of_week="sun"),
        "options": {"queue": Queue.ML.value},
    },
}
app.conf.beat_schedule = BEAT_SCHEDULE


# Task metrics for /metrics. The handlers import platform_site.metrics only when a task runs,
# after Django's settings have set PROMETHEUS_MULTIPROC_DIR.
@signals.task_prerun.connect
def _task_prerun(**kwargs):
    from platform_site.metrics import on_task_prerun

    on_task_prerun(**kwargs)


@signals.task_postrun.connect
def _task_postrun(**kwargs):
    from platform_site.metrics import on_task_postrun

    on_task_postrun(**kwargs)


@signals.worker_ready.connect
def _worker_ready(**kwargs):
    from django.conf import settings

    if settings.WORKER_METRICS_PORT:
        from platform_site.metrics import serve_worker_metrics

        serve_worker_metrics(settings.WORKER_METRICS_PORT)


@signals.worker_process_shutdown.connect
def _worker_process_shutdown(**kwargs):
    from platform_site.metrics import on_worker_process_shutdown

    on_worker_process_shutdown(**kwargs)


@app.task(name="platform_site.heartbeat", queue=Queue.DEFAULT)
def heartbeat(name: str) -> None:
    """Proves a worker consumes the broker: `heartbeat:<name>` in Redis holds when it ran."""
    import time

    from platform_site.redis import redis_client

    redis_client().set(f"heartbeat:{name}", str(time.time()), ex=3600)
