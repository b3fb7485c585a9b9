"""Shared fixtures: embedded services for the test session, users per role, API keys, a worker."""

import shutil

import pytest
from django.conf import settings


def pytest_configure(config):
    from platform_site.embedded import ensure_embedded_redis

    ensure_embedded_redis()


@pytest.fixture(scope="session", autouse=True)
def _analytics_store_schema(django_db_blocker):
    """A fresh embedded analytics store for the session, migrated to the current schema."""
    from analytics.store.migrate import store_migrate

    if settings.CLICKHOUSE_URL.startswith("chdb://"):
        path = settings.CLICKHOUSE_URL.removeprefix("chdb://")
        shutil.rmtree(path, ignore_errors=True)
    store_migrate()


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def analytics_store():
    """The analytics store, emptied of data (schema kept) before the test."""
    from analytics.store import store

    db = store()
    with db.session():
        tables = db.query(
            "SELECT name FROM system.tables WHERE database = currentDatabase() "
            "AND engine NOT IN ('View', 'MaterializedView') AND name != 'schema_migrations'"
        )
        for row in tables:
            db.command(f"TRUNCATE TABLE IF EXISTS {row['name']}")
    return db


@pytest.fixture
def make_user(db):
    from platform_site.tests.factories import UserFactory

    def make(role: str | None = None, **kwargs):
        return UserFactory(role=role, **kwargs)

    return make


@pytest.fixture
def engineer(make_user):
    return make_user("engineer", username="erin")


@pytest.fixture
def pm(make_user):
    return make_user("product", username="priya")


@pytest.fixture
def admin_user(make_user):
    return make_user("admin", username="ada")


@pytest.fixture
def api_key(db):
    """A machine-client key: (ApiKey, raw key)."""
    from platform_site.services import api_key_create

    return api_key_create(name="test-client", by=None)


@pytest.fixture
def machine_client(api_key):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_X_API_KEY=api_key[1])
    return client


@pytest.fixture
def api_client_for():
    """A DRF client logged in with a token for the given user."""
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    def make(user):
        client = APIClient()
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return make


@pytest.fixture
def celery_worker(transactional_db):
    """A real Celery worker (threads) consuming every queue of the real broker."""
    from celery.contrib.testing.worker import start_worker

    from platform_site.celery import Queue, app

    app.conf.task_always_eager = False
    with start_worker(
        app,
        pool="threads",
        concurrency=2,
        perform_ping_check=False,
        queues=[q.value for q in Queue],
        shutdown_timeout=30,
    ) as worker:
        yield worker
