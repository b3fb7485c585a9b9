"""Revenue, feature usage, satisfaction and the overview against pandas on random events."""

import datetime as dt
import json

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.catalog import FEATURES, TIER_MRR, VIDEO_STYLES
from analytics.product.common import Period
from analytics.product.overview import OverviewQuery, overview
from analytics.product.revenue import RevenueQuery, revenue
from analytics.product.satisfaction import SatisfactionQuery, satisfaction
from analytics.product.tests import reference
from analytics.product.tests.product_data import events, load, rerun_rollup_backfill, rows_from_spec
from analytics.product.usage import Dimension, UsageQuery, feature_usage

pytestmark = pytest.mark.django_db
FAST = settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
ranges = st.tuples(st.integers(0, 40), st.integers(0, 70))


def _dates(r):
    date_from = dt.date(2024, 1, 1) + dt.timedelta(days=r[0])
    return date_from, date_from + dt.timedelta(days=r[1])


def _subscription_props(draw, name):
    tier = draw(st.sampled_from(["basic", "pro", "enterprise"]))
    if name == "subscription_cancelled":
        return {"previous_mrr": TIER_MRR[tier]}
    return {"tier": tier, "mrr": TIER_MRR[tier]}


@FAST
@given(
    rows=events(
        [
            "subscription_started",
            "subscription_upgraded",
            "subscription_downgraded",
            "subscription_cancelled",
        ],
        props=_subscription_props,
    ),
    period=st.sampled_from(list(Period)),
    r=ranges,
    late=st.booleans(),
    backfill=st.booleans(),
)
def test_revenue_matches_pandas(analytics_store, rows, period, r, late, backfill):
    """Also with events inserted out of order, and with the subscription rollup rebuilt by
    the migration's backfill on top of what the view wrote."""
    frame = load(rows, late=late)
    if backfill:
        rerun_rollup_backfill(truncate=False)
    date_from, date_to = _dates(r)
    got = revenue(RevenueQuery(date_from=date_from, date_to=date_to, period=period))["periods"]
    expected = reference.revenue(frame, date_from=date_from, date_to=date_to, period=period.value)
    if not got:  # no MRR and no churn anywhere: the page shows its empty state
        assert all(e["mrr"] == 0 and e["churned_mrr"] == 0 for e in expected)
        return
    assert reference.revenue_differences(got, expected) == []
    for g in got:
        movement = g["new_mrr"] + g["expansion_mrr"] - g["contraction_mrr"] - g["churned_mrr"]
        previous = got[got.index(g) - 1]["mrr"] if got.index(g) else None
        if previous is not None:
            assert g["mrr"] == pytest.approx(previous + movement, abs=0.03)


def test_revenue_rollup_backfill_from_stored_events(analytics_store):
    """Subscription events stored before the rollup existed (rollup emptied) come back through
    the migration's backfill; a retried uuid counts once however often the backfill runs."""
    start = dt.datetime(2024, 1, 10, tzinfo=dt.UTC)
    spec = [
        ("u1", "subscription_started", 0, {"tier": "pro", "mrr": TIER_MRR["pro"]}),
        ("u1", "subscription_upgraded", 40, {"tier": "enterprise", "mrr": TIER_MRR["enterprise"]}),
        ("u2", "subscription_started", 5, {"tier": "basic", "mrr": TIER_MRR["basic"]}),
        ("u2", "subscription_cancelled", 30, {"previous_mrr": TIER_MRR["basic"]}),
    ]
    rows = rows_from_spec(spec, start=start)
    frame = load([*rows, rows[0]])
    q = RevenueQuery(date_from=dt.date(2024, 1, 1), date_to=dt.date(2024, 3, 31))
    expected = reference.revenue(frame, date_from=q.date_from, date_to=q.date_to, period="month")
    rerun_rollup_backfill(truncate=True)
    rerun_rollup_backfill(truncate=False)
    got = revenue(q)["periods"]
    assert [g["mrr"] for g in got] == pytest.approx([e["mrr"] for e in expected])
    assert [g["paying_users"] for g in got] == [e["paying_users"] for e in expected] == [2, 1, 1]
    assert [g["churned_mrr"] for g in got] == pytest.approx([0, TIER_MRR["basic"], 0])


def _usage_props(draw, name):
    if name == "feature_used":
        return {"feature": draw(st.sampled_from(FEATURES[:3]))}
    return {"video_style": draw(st.sampled_from(VIDEO_STYLES[:3]))}


def _in_range(frame, date_from, date_to):
    day = frame.timestamp.dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize()
    return frame.assign(day=day)[(day >= pd.Timestamp(date_from)) & (day <= pd.Timestamp(date_to))]


@FAST
@given(
    rows=events(["feature_used", "video_completed", "session_start"], props=_usage_props),
    period=st.sampled_from(list(Period)),
    dimension=st.sampled_from(list(Dimension)),
    r=ranges,
)
def test_feature_usage_matches_pandas(analytics_store, rows, period, dimension, r):
    frame = load(rows).drop_duplicates("uuid")
    date_from, date_to = _dates(r)
    got = feature_usage(
        UsageQuery(date_from=date_from, date_to=date_to, period=period, dimension=dimension)
    )
    ev = _in_range(frame, date_from, date_to)
    ev = ev.assign(period=reference.bucket(ev.day, period.value).dt.date.astype(str))
    active = ev.groupby("period").user_id.nunique()
    mine = ev[ev.event == dimension.event]
    mine = mine.assign(item=[json.loads(p).get(dimension.value, "") for p in mine.properties])
    expected = [
        {
            "period": p,
            "item": item,
            "events": len(g),
            "users": g.user_id.nunique(),
            "active_users": int(active[p]),
            "share_of_active": round(g.user_id.nunique() / active[p], 6),
        }
        for (p, item), g in mine.groupby(["period", "item"])
    ]
    assert got["rows"] == expected
    assert got["active_users"] == [{"period": p, "users": int(n)} for p, n in active.items()]
    top = mine.groupby("item").size()
    top_got = {
        t["value"]: t["events"] for t in got["top_properties"] if t["key"] == dimension.value
    }
    assert top_got == {k: int(v) for k, v in top.items() if k}


def _score_props(draw, name):
    return {
        "score": draw(st.integers(1, 10)),
        "video_style": draw(st.sampled_from(VIDEO_STYLES[:2])),
    }


@FAST
@given(
    rows=events(["satisfaction_score"], props=_score_props), r=ranges, min_drop=st.integers(1, 4)
)
def test_satisfaction_matches_pandas(analytics_store, rows, r, min_drop):
    frame = load(rows).drop_duplicates("uuid")
    date_from, date_to = _dates(r)
    got = satisfaction(
        SatisfactionQuery(
            date_from=date_from, date_to=date_to, period=Period.WEEK, min_drop=min_drop
        )
    )
    ev = _in_range(frame, date_from, date_to)
    ev = ev.assign(
        score=[json.loads(p)["score"] for p in ev.properties],
        tier=[json.loads(p)["user_tier"] for p in ev.properties],
        style=[json.loads(p)["video_style"] for p in ev.properties],
        period=reference.bucket(ev.day, "week").dt.date.astype(str),
    )
    assert got["distribution"] == [
        {"score": s, "responses": len(g), "users": g.user_id.nunique()}
        for s, g in ev.groupby("score")
    ]
    for key, column in (("by_tier", "tier"), ("by_video_style", "style")):
        expected = [
            {
                "period": p,
                "value": v,
                "average": pytest.approx(g.score.mean(), abs=1e-4),
                "responses": len(g),
            }
            for (p, v), g in ev.groupby(["period", column])
        ]
        assert got[key] == expected
    falling = []
    for user, g in ev.groupby("user_id"):
        if len(g) < 2:
            continue
        first = g.sort_values(["timestamp", "score"]).score.iloc[0]
        last = g.sort_values(["timestamp", "score"], ascending=[True, False]).score.iloc[-1]
        if first - last >= min_drop:
            falling.append((user, first, last))
    assert got["falling_users_total"] == len(falling)
    assert sorted(
        (f["user_id"], f["first_score"], f["last_score"]) for f in got["falling_users"]
    ) == sorted(falling)


@FAST
@given(rows=events(["signup", "session_start", "subscription_started"]), r=ranges)
def test_overview_matches_pandas(analytics_store, rows, r):
    frame = load(rows).drop_duplicates("uuid")
    date_from, date_to = _dates(r)
    got = overview(OverviewQuery(date_from=date_from, date_to=date_to, period=Period.WEEK))
    ev = _in_range(frame, date_from - dt.timedelta(days=40), date_to)
    to = pd.Timestamp(date_to)
    assert got["dau"] == ev[ev.day == to].user_id.nunique()
    assert got["wau"] == ev[ev.day > to - pd.Timedelta(days=7)].user_id.nunique()
    assert got["mau"] == ev[ev.day > to - pd.Timedelta(days=30)].user_id.nunique()
    all_days = frame.assign(day=frame.timestamp.dt.tz_localize(None).dt.normalize())
    firsts = all_days[all_days.event == "signup"].groupby("user_id").day.min()
    new = firsts[(firsts >= pd.Timestamp(date_from)) & (firsts <= to)]
    paid = all_days[all_days.event == "subscription_started"].groupby("user_id").day.min()
    converted = [u for u in new.index if u in paid.index and paid[u] <= to]
    assert got["signups"] == len(new)
    assert got["converted"] == len(converted)
