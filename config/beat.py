"""The one beat schedule: every periodic task of the platform, each interval a setting.

django-celery-beat's DatabaseScheduler copies these entries into the database, where admins
can edit the schedule.
"""

from celery.schedules import crontab
from django.conf import settings

from core.queues import Queue


def beat_schedule() -> dict[str, dict]:
    return {
        "experiments-monitor-hourly": {
            "task": "experiments.monitor_experiments",
            "schedule": settings.EXPERIMENTS_MONITOR_SECONDS,
            "options": {"queue": Queue.ANALYTICS.value},
        },
        # The events_writer process flushes within a second; this catches what it cannot.
        "analytics-events-flush-stale": {
            "task": "analytics.events_flush_stale",
            "schedule": settings.EVENTS_FLUSH_STALE_SECONDS,
            "options": {"queue": Queue.ANALYTICS.value, "expires": 25},
        },
        "refresh-business-metrics": {
            "task": "operations.refresh_business_metrics",
            "schedule": float(settings.BUSINESS_METRICS_INTERVAL),
            "options": {"queue": Queue.ANALYTICS.value, "expires": 55},
        },
        # Rollouts whose planned tick is overdue (a killed worker) resume from their saved state.
        "deployments.resume_stuck_rollouts": {
            "task": "deployments.resume_stuck_rollouts",
            "schedule": settings.ROLLOUT_SAFETY_NET_SECONDS,
            "options": {"queue": Queue.ROLLOUTS.value, "expires": 14},
        },
        # Scheduled notifications at send_at, retries after backoff, reminders after quiet hours.
        "devices.send_due": {
            "task": "devices.send_due",
            "schedule": settings.PUSH_SEND_DUE_SECONDS,
        },
        "devices.prune_devices": {
            "task": "devices.prune_devices",
            "schedule": settings.PUSH_PRUNE_SECONDS,
        },
        # Behavioural cohorts' members and sizes (each run also records the size history).
        "analytics-compute-cohorts": {
            "task": "analytics.compute_cohorts",
            "schedule": float(settings.COHORTS_COMPUTE_SECONDS),
            "options": {"queue": Queue.ANALYTICS.value, "expires": 600},
        },
        # Product-metric alerts: each enabled one measured, fired or resolved.
        "analytics-check-metric-alerts": {
            "task": "analytics.check_metric_alerts",
            "schedule": float(settings.METRIC_ALERTS_CHECK_SECONDS),
            "options": {"queue": Queue.ANALYTICS.value, "expires": 300},
        },
        "analytics-ml-retrain-weekly": {
            "task": "analytics.ml_retrain_all",
            "schedule": crontab(**settings.ML_RETRAIN_CRONTAB),
            "options": {"queue": Queue.ML.value},
        },
    }
