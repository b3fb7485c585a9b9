"""The analysis registry: runs any analysis from stored parameters, as the API would."""

import datetime as dt

import pytest
from rest_framework import serializers

from analytics.product.common import UserSelect
from analytics.product.registry import ANALYSES, analysis_result
from analytics.product.tests.product_data import load, rows_from_spec
from analytics.product.trends import TrendQuery, trend_series
from core.errors import InvalidRequest

pytestmark = pytest.mark.django_db


def test_every_spec_resolves_its_urls():
    for spec in ANALYSES.values():
        assert spec.page_url({"a": 1}).endswith("?a=1")


def test_trends_from_stored_params_with_a_user_filter(analytics_store):
    t = dt.datetime(2024, 1, 1, 10, tzinfo=dt.UTC)
    load(rows_from_spec([("u1", "signup", 0, {}), ("u2", "signup", 0, {})], start=t))
    params = {"series": "signup", "date_from": "2024-01-01", "date_to": "2024-01-01"}
    users = UserSelect("only-u1", "SELECT 'u1' AS user_id")
    got = analysis_result(name="trends", params=params, user_filter=users)
    assert got["series"][0]["points"] == [{"period": "2024-01-01", "value": 1}]
    assert analysis_result(name="trends", params=params)["series"][0]["points"][0]["value"] == 2
    same = trend_series(query=TrendQuery(series=("signup",), date_from=t.date(), date_to=t.date()))
    assert same[0]["points"][0]["value"] == 2


def test_bad_params_and_names_are_refused():
    with pytest.raises(serializers.ValidationError) as err:
        analysis_result(name="trends", params={"series": "signup", "math": "x"})
    assert "math" in err.value.detail
    with pytest.raises(InvalidRequest):
        analysis_result(name="nope", params={})
    with pytest.raises(InvalidRequest) as err:
        analysis_result(name="revenue", params={}, user_filter=UserSelect("k", "SELECT ''"))
    assert err.value.field == "cohort"


@pytest.mark.parametrize("name", ["trends", "lifecycle", "stickiness"])
def test_a_saved_cohort_filters_the_new_analyses(analytics_store, name):
    from analytics.cohorts.selectors import CohortFilter
    from analytics.store import store

    t = dt.datetime(2024, 1, 1, 10, tzinfo=dt.UTC)
    load(rows_from_spec([("u1", "signup", 0, {}), ("u2", "signup", 0, {})], start=t))
    store().insert("cohort_members", [{"cohort_id": 7, "version": 2, "user_id": "u1"}])
    params = {"date_from": "2024-01-01", "date_to": "2024-01-01", "period": "week"}
    params |= {"series": "signup"} if name == "trends" else {"event": "signup"}
    got = analysis_result(name=name, params=params, user_filter=CohortFilter(7, 2))
    if name == "trends":
        assert got["series"][0]["points"][0]["value"] == 1
    elif name == "lifecycle":
        assert got["periods"][0]["new"] == 1
    else:
        assert got["by_days"][0] == 1


def test_a_user_filter_keeps_a_funnels_users(analytics_store):
    t = dt.datetime(2024, 1, 1, 10, tzinfo=dt.UTC)
    spec = [("u1", "a", 0, {}), ("u1", "b", 0.1, {}), ("u2", "a", 0, {}), ("u2", "b", 0.1, {})]
    load(rows_from_spec(spec, start=t))
    params = {"steps": "a,b", "date_from": "2024-01-01", "date_to": "2024-01-07"}
    assert [s["count"] for s in analysis_result(name="funnel", params=params)["steps"]] == [2, 2]
    only = UserSelect("u1", "SELECT 'u1' AS user_id")
    got = analysis_result(name="funnel", params=params, user_filter=only)
    assert [s["count"] for s in got["steps"]] == [1, 1]
