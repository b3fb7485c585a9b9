"""Lifecycle and stickiness: every count against the pandas reference, on random events."""

import datetime as dt

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from analytics.product.common import Period, UserSelect
from analytics.product.lifecycle import (
    LifecycleQuery,
    StickinessQuery,
    lifecycle,
    stickiness,
)
from analytics.product.tests import reference
from analytics.product.tests.product_data import events, load, rows_from_spec

pytestmark = pytest.mark.django_db
FAST = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)


@FAST
@given(
    rows=events(["a", "b"], max_size=60),
    period=st.sampled_from(list(Period)),
    start_day=st.integers(0, 50),
    length=st.integers(0, 50),
    late=st.booleans(),
)
def test_lifecycle_and_stickiness_match_pandas(
    analytics_store, rows, period, start_day, length, late
):
    frame = load(rows, late=late)
    date_from = dt.date(2024, 1, 1) + dt.timedelta(days=start_day)
    date_to = date_from + dt.timedelta(days=length)
    got = lifecycle(LifecycleQuery("a", date_from, date_to, period))
    expected = reference.lifecycle(
        frame, event="a", date_from=date_from, date_to=date_to, period=period.value
    )
    assert got["periods"] == expected
    got = stickiness(StickinessQuery("a", date_from, date_to))
    expected = reference.stickiness(frame, event="a", date_from=date_from, date_to=date_to)
    assert {w["week"]: w["by_days"] for w in got["weeks"]} == expected
    assert got["by_days"] == [sum(v[d] for v in expected.values()) for d in range(7)]


def test_user_filter_keeps_only_its_users(analytics_store):
    start = dt.datetime(2024, 1, 1, 9, tzinfo=dt.UTC)
    load(rows_from_spec([("u1", "a", 0, {}), ("u2", "a", 0, {}), ("u2", "a", 1, {})], start=start))
    only = UserSelect("u2", "SELECT 'u2' AS user_id")
    day = dt.date(2024, 1, 1)
    got = stickiness(StickinessQuery("a", day, day + dt.timedelta(days=6), only))
    assert got["by_days"] == [0, 1, 0, 0, 0, 0, 0]
    got = lifecycle(LifecycleQuery("a", day, day + dt.timedelta(days=1), Period.DAY, only))
    assert [r["new"] for r in got["periods"]] == [1, 0]
    assert [r["returning"] for r in got["periods"]] == [0, 1]
