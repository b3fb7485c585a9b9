"""Retention cohorts: every cell against the pandas reference on random event sets."""

import datetime as dt

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from analytics.product.common import Breakdown, Period
from analytics.product.retention import (
    CohortType,
    Mode,
    RetentionQuery,
    retention,
    retention_summary,
    retention_users,
)
from analytics.product.tests import reference
from analytics.product.tests.product_data import events, load, rows_from_spec

pytestmark = pytest.mark.django_db
FAST = settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FAST
@given(
    rows=events(["signup", "session_start", "project_created"]),
    period=st.sampled_from(list(Period)),
    mode=st.sampled_from(list(Mode)),
    cohort_type=st.sampled_from(list(CohortType)),
    breakdown=st.sampled_from([None, "user_tier", "prop:user_tier"]),
    start_day=st.integers(0, 40),
    length=st.integers(0, 80),
    periods=st.integers(1, 12),
)
def test_retention_matches_pandas(
    analytics_store, rows, period, mode, cohort_type, breakdown, start_day, length, periods
):
    frame = load(rows)
    date_from = dt.date(2024, 1, 1) + dt.timedelta(days=start_day)
    date_to = date_from + dt.timedelta(days=length)
    q = RetentionQuery(
        date_from=date_from,
        date_to=date_to,
        period=period,
        periods=periods,
        mode=mode,
        cohort_type=cohort_type,
        breakdown=Breakdown.parse(breakdown),
    )
    got = retention(q)
    expected = reference.retention(
        frame,
        start_event="signup",
        return_event="session_start",
        period=period.value,
        date_from=date_from,
        date_to=date_to,
        periods=periods,
        mode=mode.value,
        cohort_type=cohort_type.value,
        breakdown_key="user_tier" if breakdown else None,
    )
    assert got["cohorts"] == expected
    for c in got["cohorts"]:
        assert c["retained"][0] == c["size"]


def test_edge_cases_by_hand(analytics_store):
    """Events before the cohort, on period boundaries, in another time zone, and duplicated."""
    utc = dt.UTC
    rows = [
        # u1: a return before signing up (not counted), signup on Jan 31 23:30 -05:00 = Feb 1 UTC
        {"event": "session_start", "user_id": "u1", "at": dt.datetime(2024, 1, 10, tzinfo=utc)},
        {
            "event": "signup",
            "user_id": "u1",
            "at": dt.datetime(2024, 2, 1, 4, 30, tzinfo=utc),
            "tz": dt.timedelta(hours=-5),
        },
        # a return exactly at the start of the next month: period 1
        {"event": "session_start", "user_id": "u1", "at": dt.datetime(2024, 3, 1, tzinfo=utc)},
        # u2: signup 1 ms before March; the same return sent twice (one uuid)
        {
            "event": "signup",
            "user_id": "u2",
            "at": dt.datetime(2024, 3, 1, tzinfo=utc) - dt.timedelta(milliseconds=1),
        },
        {
            "event": "session_start",
            "user_id": "u2",
            "at": dt.datetime(2024, 3, 1, tzinfo=utc),
            "uuid": "00000000-0000-0000-0000-000000000001",
        },
        {
            "event": "session_start",
            "user_id": "u2",
            "at": dt.datetime(2024, 3, 1, tzinfo=utc),
            "uuid": "00000000-0000-0000-0000-000000000001",
        },
    ]
    from analytics.product.tests.product_data import load as load_rows

    load_rows(
        [
            {
                "uuid": r.get("uuid") or f"00000000-0000-0000-0000-0000000001{i:02d}",
                "event": r["event"],
                "user_id": r["user_id"],
                "timestamp": r["at"],
                "properties": "{}",
                "tz": r.get("tz", dt.timedelta(0)),
            }
            for i, r in enumerate(rows)
        ]
    )
    result = retention(RetentionQuery(date_from=dt.date(2024, 1, 1), date_to=dt.date(2024, 3, 31)))
    # both signed up in February (UTC) and returned exactly at the start of March
    assert result["cohorts"] == [
        {"cohort": "2024-02-01", "breakdown": None, "size": 2, "retained": [2, 2], "complete": 2},
    ]
    # by day: u1's return is 29 days later (beyond 1 period), u2's the next day
    feb = retention(
        RetentionQuery(
            date_from=dt.date(2024, 2, 1),
            date_to=dt.date(2024, 3, 31),
            period=Period.DAY,
            periods=1,
        )
    )
    assert {c["cohort"]: c["retained"] for c in feb["cohorts"]} == {
        "2024-02-01": [1, 0],
        "2024-02-29": [1, 1],
    }
    users = retention_users(
        RetentionQuery(date_from=dt.date(2024, 1, 1), date_to=dt.date(2024, 3, 31)),
        cohort=dt.date(2024, 2, 1),
        k=1,
        breakdown_value=None,
        limit=10,
        offset=0,
    )
    assert users == {"total": 2, "users": ["u1", "u2"]}


def test_a_running_period_is_listed_but_left_out_of_the_summary(analytics_store):
    spec = [(u, "signup", 0, {}) for u in ("u1", "u2")] + [("u1", "session_start", 35, {})]
    load(rows_from_spec(spec, start=dt.datetime(2024, 1, 10, tzinfo=dt.UTC)))
    # February has begun by date_to but not ended: its one return so far is listed...
    running = retention(RetentionQuery(date_from=dt.date(2024, 1, 1), date_to=dt.date(2024, 2, 20)))
    assert running["cohorts"] == [
        {"cohort": "2024-01-01", "breakdown": None, "size": 2, "retained": [2, 1], "complete": 1}
    ]
    # ...and averages nothing until the month is over
    assert running["summary"]["period_1"] == {"average": None, "trend": None, "cohorts": 0}
    ended = retention(RetentionQuery(date_from=dt.date(2024, 1, 1), date_to=dt.date(2024, 2, 29)))
    assert ended["cohorts"][0]["complete"] == 2
    assert ended["summary"]["period_1"] == {"average": 0.5, "trend": None, "cohorts": 1}


def test_empty_range_has_no_cohorts(analytics_store):
    result = retention(RetentionQuery(date_from=dt.date(2024, 1, 1), date_to=dt.date(2024, 1, 1)))
    assert result["cohorts"] == []
    assert result["summary"]["period_1"] == {"average": None, "trend": None, "cohorts": 0}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(1, 500), st.integers(0, 500), st.integers(0, 500), st.integers(0, 500)
        ),
        min_size=0,
        max_size=8,
    )
)
def test_summary_is_weighted_average_and_least_squares_trend(raw):
    cohorts = []
    for i, (size, a, b, c) in enumerate(raw):
        kept = [size, min(a, size), min(b, size), min(c, size)][: 4 - (i % 3)]
        complete = len(kept) - (a + b) % 2  # the last period listed still running, or not
        cohorts.append(
            {
                "cohort": f"2024-{i + 1:02d}-01",
                "breakdown": None,
                "size": size,
                "retained": kept,
                "complete": complete,
            }
        )
    summary = retention_summary(cohorts, periods=3)
    for k in (1, 3):
        reached = [c for c in cohorts if c["complete"] > k]
        entry = summary[f"period_{k}"]
        assert entry["cohorts"] == len(reached)
        if not reached:
            assert entry["average"] is None
            continue
        rates = np.array([c["retained"][k] / c["size"] for c in reached])
        sizes = np.array([c["size"] for c in reached])
        assert entry["average"] == pytest.approx(np.average(rates, weights=sizes), abs=1e-6)
        if len(reached) >= 2:
            slope = stats.linregress(np.arange(len(rates)), rates).slope
            assert entry["trend"] == pytest.approx(slope, abs=1e-6)
    assert "period_6" not in summary
