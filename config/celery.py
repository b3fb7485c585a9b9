"""The Celery app: its queues, the beat schedule (config/beat.py) and the exporter's signals."""

import os

from celery import Celery, signals
from kombu import Queue as KombuQueue

from core.queues import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("book2video")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [KombuQueue(q.value) for q in Queue]
app.autodiscover_tasks()
app.autodiscover_tasks(
    [
        "analytics.events",
        "analytics.insights",
        "analytics.cohorts",
        "analytics.dashboards",
        "analytics.alerts",
    ]
)  # sub-packages of analytics


@app.on_after_configure.connect
def _beat_schedule(sender, **kwargs):
    # Read once Django's settings are loaded: every interval is a setting.
    from config.beat import beat_schedule

    sender.conf.beat_schedule = beat_schedule()


# Task metrics for /metrics. The handlers import the exporter only when a task runs, after
# Django's settings have set PROMETHEUS_MULTIPROC_DIR.
@signals.task_prerun.connect
def _task_prerun(**kwargs):
    from operations.exporter import on_task_prerun

    on_task_prerun(**kwargs)


@signals.task_postrun.connect
def _task_postrun(**kwargs):
    from operations.exporter import on_task_postrun

    on_task_postrun(**kwargs)


@signals.worker_ready.connect
def _worker_ready(**kwargs):
    from django.conf import settings

    if settings.WORKER_METRICS_PORT:
        from operations.exporter import serve_worker_metrics

        serve_worker_metrics(settings.WORKER_METRICS_PORT)


@signals.worker_process_shutdown.connect
def _worker_process_shutdown(**kwargs):
    from operations.exporter import on_worker_process_shutdown

    on_worker_process_shutdown(**kwargs)
