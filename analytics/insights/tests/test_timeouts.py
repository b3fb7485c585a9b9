"""The events explorer and the at-risk page bound every store query by ANALYTICS_QUERY_TIMEOUT
(they once ran without it), and a timeout is a message, not a 500."""

import pytest

from analytics.store import store
from analytics.store.base import QueryTimeout

pytestmark = pytest.mark.django_db


@pytest.fixture
def pm_client(client, pm):
    client.force_login(pm)
    return client


def _spy(monkeypatch):
    calls = []
    real = type(store()).query

    def query(self, sql, params=None, **kwargs):
        calls.append(kwargs.get("timeout"))
        return real(self, sql, params, **kwargs)

    monkeypatch.setattr(type(store()), "query", query)
    return calls


@pytest.mark.parametrize(
    "url",
    ["/analytics/events/?event=signup", "/analytics/at-risk/", "/analytics/at-risk/?format=csv"],
)
def test_every_query_carries_the_analytics_timeout(
    analytics_store, pm_client, monkeypatch, settings, url
):
    settings.ANALYTICS_QUERY_TIMEOUT = 7.5
    calls = _spy(monkeypatch)
    assert pm_client.get(url).status_code == 200
    assert calls and all(timeout == 7.5 for timeout in calls), calls


def test_at_risk_timeout_shows_a_message_not_a_500(pm_client, monkeypatch):
    # Mocked: a real query past the limit is not reproducible on tiny test data.
    def slow(self, *args, **kwargs):
        raise QueryTimeout("query ran past 15.0 s")

    monkeypatch.setattr(type(store()), "query", slow)
    response = pm_client.get("/analytics/at-risk/")
    assert response.status_code == 503
    assert "could not answer in time" in response.content.decode()
