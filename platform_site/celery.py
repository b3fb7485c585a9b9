"""The Celery app, its queues and the one beat schedule every periodic task is declared in."""

import os
from enum import StrEnum

from celery import Celery
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
app.autodiscover_tasks(["analytics.ml"])  # analytics/ml/tasks.py

# Periodic tasks: declared here only. django-celery-beat's DatabaseScheduler copies them into
# the database, where admins can edit the schedule.
BEAT_SCHEDULE: dict[str, dict] = {
    "analytics-ml-retrain-weekly": {
        "task": "analytics.ml_retrain_all",
        "schedule": crontab(minute=0, hour=3, day_of_week="sun"),
        "options": {"queue": Queue.ML.value},
    },
}
app.conf.beat_schedule = BEAT_SCHEDULE


@app.task(name="platform_site.heartbeat", queue=Queue.DEFAULT)
def heartbeat(name: str) -> None:
    """Proves a worker consumes the broker: `heartbeat:<name>` in Redis holds when it ran."""
    import time

    from platform_site.redis import redis_client

    redis_client().set(f"heartbeat:{name}", str(time.time()), ex=3600)
