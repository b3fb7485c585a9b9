"""The Celery queues every task is routed to: one name per kind of work."""

from enum import StrEnum


class Queue(StrEnum):
    ROLLOUTS = "rollouts"
    ANALYTICS = "analytics"
    ML = "ml"
    NOTIFICATIONS = "notifications"
    DEFAULT = "default"
