"""Fixtures of the operations tests: Alertmanager's webhook with its token."""

import pytest
from rest_framework.test import APIClient

from operations.tests.factories import ALERT_TOKEN


@pytest.fixture
def webhook(settings, db):
    """Posts a payload with the bearer token; alert actions run inline (task_always_eager)."""
    from config.celery import app

    settings.ALERT_WEBHOOK_TOKEN = ALERT_TOKEN
    app.conf.task_always_eager = True
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {ALERT_TOKEN}")

    def post(body, **extra):
        if "content_type" not in extra:
            extra["format"] = "json"
        return client.post("/api/alerts/", body, **extra)

    yield post
    app.conf.task_always_eager = False


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    def post_and_commit(webhook, body):
        with django_capture_on_commit_callbacks(execute=True):
            return webhook(body)

    return post_and_commit
