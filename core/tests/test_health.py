"""Probes: /health never touches dependencies; /ready names the one that fails."""

import pytest

pytestmark = pytest.mark.django_db


def test_health_is_public_and_dependency_free(client, settings):
    settings.CLICKHOUSE_URL = "clickhouse://127.0.0.1:1/default"
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_when_everything_is_reachable(client):
    response = client.get("/ready")
    assert response.status_code == 200, response.content
    assert response.json()["checks"] == ["analytics_store", "database", "redis"]


def test_ready_is_503_naming_the_unreachable_store(client, settings):
    # Port 1 on loopback: nothing listens there, so the ClickHouse client cannot connect.
    settings.CLICKHOUSE_URL = "clickhouse://127.0.0.1:1/default"
    response = client.get("/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["error"] == "dependency_unreachable"
    assert body["detail"] == {"analytics_store": "unreachable"}
    # Nothing of the exception reaches an anonymous caller: no address, no driver message.
    assert "127.0.0.1" not in response.content.decode()
    assert "Error" not in response.content.decode()


def test_ready_is_503_naming_unreachable_redis(client, settings, monkeypatch):
    from core import redis as redis_module

    redis_module.redis_client.cache_clear()
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    try:
        response = client.get("/ready")
    finally:
        redis_module.redis_client.cache_clear()
    assert response.status_code == 503
    assert list(response.json()["detail"]) == ["redis"]
