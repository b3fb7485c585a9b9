"""The book2video platform console: project package (settings, celery app, shared services)."""

from platform_site.celery import app as celery_app

__all__ = ["celery_app"]
