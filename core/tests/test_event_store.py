"""core.event_store: the analytics store as deployments reaches it (analytics registers it)."""

import pytest

from core import event_store


def test_analytics_registers_its_store_and_its_errors_are_named(monkeypatch):
    from analytics.store import StoreError

    assert event_store._query is not None and event_store._insert is not None

    def failing(*args, **kwargs):
        raise StoreError("the server said no")

    monkeypatch.setattr(event_store, "_query", failing)
    with pytest.raises(event_store.EventStoreUnavailable, match="the server said no"):
        event_store.query("SELECT 1", {})


def test_without_an_analytics_app_the_store_is_unavailable(monkeypatch):
    monkeypatch.setattr(event_store, "_query", None)
    monkeypatch.setattr(event_store, "_insert", None)
    with pytest.raises(event_store.EventStoreUnavailable, match="no analytics store"):
        event_store.query("SELECT 1", {})
    with pytest.raises(event_store.EventStoreUnavailable, match="no analytics store"):
        event_store.insert_events([{"event": "x"}])


def test_a_query_reaches_the_store(analytics_store):
    assert event_store.query("SELECT 1 + {n:UInt8} AS two", {"n": 1}) == [{"two": 2}]
