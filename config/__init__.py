"""Project configuration: settings, URLs, ASGI/WSGI entry points, the Celery app and beat."""

from config.celery import app as celery_app

__all__ = ["celery_app"]
