"""Celery tasks of the core: the heartbeat that proves a worker consumes the broker."""

import time

from celery import shared_task

from core.queues import Queue
from core.redis import redis_client


@shared_task(name="core.heartbeat", queue=Queue.DEFAULT)
def heartbeat(name: str) -> None:
    """`heartbeat:<name>` in Redis holds when a worker last ran it."""
    redis_client().set(f"heartbeat:{name}", str(time.time()), ex=3600)
