"""The product-analysis APIs: roles, parameters (400 naming the field), timeouts, caching."""

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.product.tests.product_data import load, rows_from_spec
from analytics.store.base import QueryTimeout

pytestmark = pytest.mark.django_db
ENDPOINTS = ["overview", "retention", "funnel", "revenue", "feature-usage", "satisfaction"]


def _url(name, **params):
    from urllib.parse import urlencode

    return f"/api/analytics/{name}/?{urlencode(params)}"


def _rows():
    t = dt.datetime(2024, 1, 3, tzinfo=dt.UTC)
    spec = [
        ("u1", "signup", 0, {"user_tier": "free"}),
        ("u1", "session_start", 40, {}),
        ("u1", "subscription_started", 1, {"tier": "basic", "mrr": 9.99}),
        ("u1", "feature_used", 2, {"feature": "music"}),
        ("u1", "satisfaction_score", 2, {"score": 8, "video_style": "animated"}),
        ("u1", "satisfaction_score", 20, {"score": 3, "video_style": "animated"}),
        ("u2", "signup", 5, {"user_tier": "pro"}),
    ]
    return rows_from_spec(spec, start=t)


@pytest.mark.parametrize("role", ["product", "engineer", "admin"])
def test_every_staff_role_reads(analytics_store, make_user, api_client_for, role):
    load(_rows())
    client = api_client_for(make_user(role, username=f"r-{role}"))
    params = {"date_from": "2024-01-01", "date_to": "2024-03-31"}
    for name in ENDPOINTS if role == "product" else ["retention"]:
        extra = {"steps": "signup,session_start"} if name == "funnel" else {}
        response = client.get(_url(name, **params, **extra))
        assert response.status_code == 200, (name, response.json())


def test_retention_shape(analytics_store, pm, api_client_for):
    load(_rows())
    body = (
        api_client_for(pm)
        .get(_url("retention", date_from="2024-01-01", date_to="2024-03-31", period="month"))
        .json()
    )
    assert body["period"] == "month"
    assert body["cohorts"] == [
        {"cohort": "2024-01-01", "breakdown": None, "size": 2, "retained": [2, 1, 0], "complete": 3}
    ]
    assert body["summary"]["period_1"]["average"] == 0.5
    users = (
        api_client_for(pm)
        .get(
            _url(
                "retention/users",
                date_from="2024-01-01",
                date_to="2024-03-31",
                cohort="2024-01-01",
                k=1,
            )
        )
        .json()
    )
    assert users == {"total": 1, "users": ["u1"]}


def test_funnel_shape(analytics_store, pm, api_client_for):
    load(_rows())
    body = (
        api_client_for(pm)
        .get(
            _url(
                "funnel",
                steps="signup,subscription_started",
                date_from="2024-01-01",
                date_to="2024-01-31",
            )
        )
        .json()
    )
    assert [(s["event"], s["count"]) for s in body["steps"]] == [
        ("signup", 2),
        ("subscription_started", 1),
    ]
    assert body["steps"][1]["conversion_from_start"] == 0.5
    assert body["steps"][1]["median_seconds_to_convert"] == 86400
    dropped = (
        api_client_for(pm)
        .get(
            _url(
                "funnel/dropped",
                steps="signup,subscription_started",
                date_from="2024-01-01",
                date_to="2024-01-31",
                step=2,
            )
        )
        .json()
    )
    assert dropped == {"total": 1, "users": ["u2"]}


def test_funnel_exclusions_and_step_windows(analytics_store, pm, api_client_for):
    load(_rows())
    params = {"steps": "signup,subscription_started", "date_from": "2024-01-01"}
    params["date_to"] = "2024-01-31"
    client = api_client_for(pm)
    body = client.get(_url("funnel", **params, step_windows="2h")).json()
    assert [s["count"] for s in body["steps"]] == [2, 0]  # a day after signup: past 2 hours
    assert body["window_days"] is None and body["step_windows"] == [7200]
    body = client.get(_url("funnel", **params, step_windows="2d", window_days=3)).json()
    assert [s["count"] for s in body["steps"]] == [2, 1]
    # u1 used a feature after subscribing: not between the steps, so kept
    body = client.get(_url("funnel", **params, exclusions="feature_used:1-2")).json()
    assert body["exclusions"] == [{"event": "feature_used", "from_step": 1, "to_step": 2}]
    assert [s["count"] for s in body["steps"]] == [2, 1]
    assert body["window_days"] == 14


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("retention", {"period": "year"}, "period"),
        ("retention", {"date_from": "2024-02-01", "date_to": "2024-01-01"}, "date_from"),
        ("retention", {"breakdown": "email"}, "breakdown"),
        ("retention", {"breakdown": "prop:bad key"}, "breakdown"),
        ("retention", {"mode": "sometimes"}, "mode"),
        ("retention", {"periods": "13"}, "periods"),
        ("retention", {"start_event": "x'; DROP"}, "start_event"),
        ("retention", {"date_from": "01/02/2024"}, "date_from"),
        ("funnel", {"steps": ",".join("abcdefghijk")}, "steps"),
        ("funnel", {"steps": "a"}, "steps"),
        ("funnel", {}, "steps"),
        ("funnel", {"steps": "a,b", "order": "random"}, "order"),
        ("funnel", {"steps": "a,b:nokey", "window_days": "14"}, "steps"),
        ("funnel", {"steps": "a,b", "window_days": "0"}, "window_days"),
        ("funnel", {"steps": "a,b", "exclusions": "x:1-3"}, "exclusions"),
        ("funnel", {"steps": "a,b", "exclusions": "x:2-1"}, "exclusions"),
        ("funnel", {"steps": "a,b", "exclusions": "b:1-2"}, "exclusions"),
        ("funnel", {"steps": "a,b", "exclusions": "x"}, "exclusions"),
        ("funnel", {"steps": "a,b", "exclusions": ",".join(["x:1-2"] * 6)}, "exclusions"),
        ("funnel", {"steps": "a,b,c", "step_windows": "1h"}, "step_windows"),
        ("funnel", {"steps": "a,b", "step_windows": "10s"}, "step_windows"),
        ("funnel", {"steps": "a,b", "step_windows": "366d"}, "step_windows"),
        ("funnel", {"steps": "a,b", "step_windows": "1h", "order": "any"}, "step_windows"),
        ("revenue", {"breakdown": "user_tier"}, "breakdown"),
        ("feature-usage", {"dimension": "colour"}, "dimension"),
        ("satisfaction", {"min_drop": "0"}, "min_drop"),
        ("retention/users", {"cohort": "2024-01-01"}, "k"),
        ("funnel/dropped", {"steps": "a,b", "step": "3"}, "step"),
        # A page past the maximum once overflowed the store's OFFSET and answered 500.
        ("retention/users", {"cohort": "2024-01-01", "k": "0", "page": "10001"}, "page"),
        ("funnel/dropped", {"steps": "a,b", "step": "2", "page": "99999999999999"}, "page"),
    ],
)
def test_bad_parameters_answer_400_naming_them(pm, api_client_for, name, params, field):
    response = api_client_for(pm).get(_url(name, **params))
    body = response.json()
    if "date_to" in params:  # a range that ends before it starts: a rule the schema cannot state
        assert (response.status_code, body["error"]) == (422, "unprocessable")
    else:  # 400: the schema refuses it; 422: a grammar the schema does not state (steps)
        assert (response.status_code, body["error"]) in {(400, "invalid"), (422, "unprocessable")}
    assert field in body["detail"], body


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    params=st.dictionaries(
        st.sampled_from(
            [
                "date_from",
                "date_to",
                "period",
                "breakdown",
                "steps",
                "window_days",
                "order",
                "periods",
                "mode",
                "start_event",
                "dimension",
            ]
        ),
        st.text(max_size=30),
        max_size=5,
    )
)
def test_garbage_never_500(pm, api_client_for, params):
    client = api_client_for(pm)
    for name in ("retention", "funnel"):
        response = client.get(_url(name, **params))
        assert response.status_code in (200, 400, 404, 409, 422), (
            name,
            params,
            response.content[:300],
        )
        if response.status_code != 200:
            assert set(response.json()["detail"]) <= set(params) | {"steps", "date_from"}


def test_anonymous_and_machine_keys_are_refused(client, machine_client):
    assert client.get(_url("retention")).status_code in (401, 403)
    assert machine_client.get(_url("retention")).status_code == 403


def test_timeout_is_a_clear_503(pm, api_client_for, monkeypatch):
    # A real timeout needs a query slower than any limit chdb accepts on tiny data, so the
    # store's query is replaced by one raising the store's own timeout error.
    from analytics.store import store

    def slow(self, *args, **kwargs):
        raise QueryTimeout("query ran past 0.5 s")

    monkeypatch.setattr(type(store()), "query", slow)
    response = api_client_for(pm).get(_url("retention"))
    assert response.status_code == 503
    assert response.json()["error"] == "query_timeout"
    assert "narrow the date range" in response.json()["detail"]


def test_results_are_cached_by_normalized_parameters(analytics_store, pm, api_client_for):
    load(_rows())
    client = api_client_for(pm)
    params = {"date_from": "2024-01-01", "date_to": "2024-03-31", "period": "month"}
    first = client.get(_url("retention", **params)).json()
    analytics_store.command("TRUNCATE TABLE panalytics_user_first")  # the cache must answer
    reordered = {
        "period": "month",
        "date_to": "2024-03-31",
        "date_from": "2024-01-01",
        "mode": "on",
        "periods": "12",
    }
    assert client.get(_url("retention", **reordered)).json() == first


def test_cache_ttl_is_short_when_the_range_includes_today(settings):
    from analytics.store.cache import cache_ttl

    settings.ANALYTICS_CACHE_TTL, settings.ANALYTICS_CACHE_TTL_RECENT = 3600, 60
    today = dt.datetime.now(dt.UTC).date()
    assert cache_ttl(today) == 60
    assert cache_ttl(today - dt.timedelta(days=1)) == 3600
