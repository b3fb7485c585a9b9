"""The real moving parts: a Celery worker on the real broker, websockets with session auth,
the standard `platform` module, and the production settings guard."""

import os
import subprocess
import sys

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings

from config.asgi import application
from core.queues import Queue
from core.tasks import heartbeat


def test_standard_platform_module_is_not_shadowed():
    import platform

    assert platform.system() == "Linux"
    assert platform.__file__.startswith(sys.base_prefix) or "platform_site" not in platform.__file__


@pytest.mark.slow
def test_real_celery_worker_runs_a_task_from_the_real_broker(celery_worker):
    # No result backend: the task proves it ran by writing its heartbeat to Redis.
    import time

    from core.redis import redis_client

    redis_client().delete("heartbeat:test")
    sent_at = time.time()
    heartbeat.apply_async(args=["test"], queue=Queue.DEFAULT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and redis_client().get("heartbeat:test") is None:
        time.sleep(0.05)
    assert float(redis_client().get("heartbeat:test")) >= sent_at


async def _session_cookie_for(user) -> bytes:
    from django.test import Client

    client = Client()
    await sync_to_async(client.force_login)(user)
    return f"{django_settings.SESSION_COOKIE_NAME}={client.cookies[django_settings.SESSION_COOKIE_NAME].value}".encode()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_websocket_accepts_an_authenticated_session(engineer):
    cookie = await _session_cookie_for(engineer)
    communicator = WebsocketCommunicator(
        application, "/ws/whoami/", headers=[(b"cookie", cookie), (b"origin", b"http://127.0.0.1")]
    )
    connected, _ = await communicator.connect()
    assert connected
    assert await communicator.receive_json_from() == {
        "username": engineer.username,
        "roles": ["engineer"],
    }
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_websocket_refuses_anonymous():
    communicator = WebsocketCommunicator(
        application, "/ws/whoami/", headers=[(b"origin", b"http://127.0.0.1")]
    )
    connected, code = await communicator.connect()
    assert not connected
    assert code == 4403
    # A server sends websocket.disconnect after a close; without it the app instance stays
    # in the channel layer's blocking read until the event loop shuts down.
    await communicator.disconnect()


def _django(env_overrides: dict, *args: str) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "SECRET_KEY",
            "ALLOWED_HOSTS",
            "DEBUG",
            "DJANGO_ALLOW_ASYNC_UNSAFE",
            "METRICS_TOKEN",
        )
    }
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=django_settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_refuses_to_start_without_secret_key():
    result = _django({"DEBUG": "0", "ALLOWED_HOSTS": "console.example.com"}, "check")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_refuses_to_start_without_a_metrics_token():
    result = _django(
        {"DEBUG": "0", "SECRET_KEY": "x" * 60, "ALLOWED_HOSTS": "console.example.com"}, "check"
    )
    assert result.returncode != 0
    assert "METRICS_TOKEN must be set" in result.stderr


def test_production_refuses_to_start_without_allowed_hosts():
    result = _django({"DEBUG": "0", "SECRET_KEY": "x" * 60, "METRICS_TOKEN": "m"}, "check")
    assert result.returncode != 0
    assert "ALLOWED_HOSTS must be set" in result.stderr


def test_check_deploy_is_clean_with_production_settings():
    result = _django(
        {
            "DEBUG": "0",
            "SECRET_KEY": "k" * 30 + "Q9!z" * 10,
            "ALLOWED_HOSTS": "console.example.com",
            "METRICS_TOKEN": "m" * 32,
        },
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_demo_users_are_refused_in_production(settings, db):
    from django.core.exceptions import ImproperlyConfigured

    from core.demo import seed_users

    settings.DEMO_MODE = False
    with pytest.raises(ImproperlyConfigured):
        seed_users()
