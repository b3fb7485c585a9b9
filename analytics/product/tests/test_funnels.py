"""Funnels: every step count, conversion, median and histogram bucket against pandas."""

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.product import funnels
from analytics.product.common import Breakdown, Period
from analytics.product.funnels import (
    Exclusion,
    FunnelQuery,
    Order,
    Step,
    funnel,
    funnel_dropped_users,
)
from analytics.product.tests import reference
from analytics.product.tests.product_data import events, load, rerun_rollup_backfill
from analytics.store import store

pytestmark = pytest.mark.django_db
FAST = settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
NAMES = ["a", "b", "c"]


def _props(draw, name):
    return {"style": draw(st.sampled_from(["x", "y"]))}


steps_strategy = st.lists(
    st.tuples(st.sampled_from(NAMES), st.sampled_from([None, "x", "y"])), min_size=2, max_size=4
)


@FAST
@given(
    rows=events(NAMES, props=_props, max_size=50),
    raw_steps=steps_strategy,
    order=st.sampled_from(list(Order)),
    window_days=st.integers(1, 40),
    start_day=st.integers(0, 30),
    length=st.integers(0, 60),
    breakdown=st.sampled_from([None, "prop:style", "user_tier"]),
    period=st.sampled_from(list(Period)),
)
def test_funnel_matches_pandas(
    analytics_store, rows, raw_steps, order, window_days, start_day, length, breakdown, period
):
    frame = load(rows)
    q = _query(
        raw_steps,
        start_day,
        length,
        window_days=window_days,
        order=order,
        breakdown=Breakdown.parse(breakdown),
        period=period,
    )
    _assert_as_pandas(q, frame)


def _query(raw_steps, start_day: int, length: int, **options) -> FunnelQuery:
    """A funnel over drawn (event, style value or None) steps and a drawn range."""
    date_from = dt.date(2024, 1, 1) + dt.timedelta(days=start_day)
    return FunnelQuery(
        steps=tuple(Step(e, "style" if v else "", v or "") for e, v in raw_steps),
        date_from=date_from,
        date_to=date_from + dt.timedelta(days=length),
        **options,
    )


def _assert_as_pandas(q: FunnelQuery, frame) -> None:
    """The funnel, each breakdown group, their trends and the users who dropped before the
    last step, against the reference's walk over each user's events."""
    got = funnel(q)
    levels = reference.funnel_levels(
        frame,
        steps=[(s.event, s.property_key, s.property_value) for s in q.steps],
        date_from=q.date_from,
        date_to=q.date_to,
        window_days=q.window_days,
        order=q.order.value,
        breakdown_key=q.breakdown
        and {"prop:style": "style"}.get(q.breakdown.name, q.breakdown.key),
        exclusions=[(x.event, x.from_step, x.to_step) for x in q.exclusions],
        step_windows=q.step_windows,
    )
    k = len(q.steps)
    _assert_same(got, reference.funnel(levels, k))
    span = {"period": q.period.value, "date_from": q.date_from, "date_to": q.date_to}
    _assert_trend(got, reference.funnel_trend(levels, k, **span))
    if q.breakdown:
        groups = {g["breakdown"]: g for g in got["breakdowns"]}
        assert set(groups) == set(levels.bval)
        for value, part in levels.groupby("bval"):
            _assert_same(groups[value], reference.funnel(part, k))
            _assert_trend(groups[value], reference.funnel_trend(part, k, **span))
    dropped = funnel_dropped_users(q, step=k, limit=1000, offset=0)
    assert dropped["users"] == sorted(levels[levels.level == k - 1].user_id)
    assert dropped["total"] == len(dropped["users"])


@FAST
@given(
    rows=events(NAMES, props=_props, max_size=60),
    names=st.permutations(NAMES).flatmap(lambda p: st.integers(2, 3).map(lambda k: p[:k])),
    window_days=st.integers(1, 40),
    start_day=st.integers(0, 30),
    length=st.integers(0, 60),
    late=st.booleans(),
)
def test_funnel_from_the_rollup_matches_pandas_and_the_fold(
    analytics_store, rows, names, window_days, start_day, length, late
):
    """Sequential funnels over distinct steps read each user's event times (the rollup), with
    retried uuids and events inserted out of order; every user's level and times must equal
    the fold over raw events, and the figures pandas."""
    frame = load(rows, late=late)
    date_from = dt.date(2024, 1, 1) + dt.timedelta(days=start_day)
    date_to = date_from + dt.timedelta(days=length)
    q = FunnelQuery(
        steps=tuple(Step(e) for e in names),
        date_from=date_from,
        date_to=date_to,
        window_days=window_days,
    )
    assert funnels.rollup_serves(q)
    levels = reference.funnel_levels(
        frame,
        steps=[(e, "", "") for e in names],
        date_from=date_from,
        date_to=date_to,
        window_days=window_days,
        order="sequential",
    )
    got = funnel(q)
    _assert_same(got, reference.funnel(levels, len(names)))
    # the bench's vectorized pandas funnel computes the same result
    fast = reference.funnel_sequential(
        frame,
        steps=names,
        date_from=date_from,
        date_to=date_to,
        window_days=window_days,
        period=q.period.value,
    )
    assert reference.funnel_sequential_differences(got, fast) == []
    assert _per_user(funnels.per_user_sql(q), q) == _per_user(funnels._fold_sql_per_user(q), q)
    k = len(names)
    dropped = funnel_dropped_users(q, step=k, limit=1000, offset=0)
    assert dropped["users"] == sorted(levels[levels.level == k - 1].user_id)


def _per_user(sql, q):
    rows = store().query(
        f"SELECT user_id, level, times FROM ({sql}) ORDER BY user_id", funnels._params(q)
    )
    return [(r["user_id"], r["level"], r["times"]) for r in rows]


def _minute_rows(spec, t0):
    """Event rows from (user, event, minutes after t0) tuples, uuids numbered."""
    return [
        {
            "uuid": f"00000000-0000-0000-0000-{i:012d}",
            "event": e,
            "user_id": u,
            "timestamp": t0 + dt.timedelta(minutes=m),
            "properties": "{}",
            "tz": dt.timedelta(0),
        }
        for i, (u, e, m) in enumerate(spec)
    ]


def test_funnel_rollup_backfill_is_idempotent(analytics_store):
    """The migration's backfill rebuilds the rollup from stored events, and running it again
    (or over rows the view already wrote) changes no figure."""
    t0 = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
    spec = [("u1", "a", 0), ("u1", "b", 1), ("u1", "c", 2), ("u2", "a", 3), ("u2", "b", 2000)]
    spec += [("u3", "b", 0), ("u3", "a", 5), ("u3", "b", 6), ("u3", "a", 7), ("u3", "c", 8)]
    rows = _minute_rows(spec, t0)
    load(rows + rows[:3])  # u1's events sent twice
    q = FunnelQuery(
        steps=(Step("a"), Step("b"), Step("c")),
        date_from=dt.date(2024, 1, 1),
        date_to=dt.date(2024, 1, 31),
        window_days=1,
    )
    expected = funnels._funnel(q)
    assert [s["count"] for s in expected["steps"]] == [3, 2, 2]
    rerun_rollup_backfill(truncate=False)
    rerun_rollup_backfill(truncate=False)
    assert funnels._funnel(q) == expected
    rerun_rollup_backfill(truncate=True)
    assert funnels._funnel(q) == expected


def _assert_trend(got, expected):
    assert [(t["period"], t["entered"], t["converted"]) for t in got["trend"]] == [
        (t["period"], t["entered"], t["converted"]) for t in expected
    ]
    for mine, theirs in zip(got["trend"], expected, strict=True):
        assert mine["conversion"] == pytest.approx(theirs["conversion"], abs=1e-6)


def _assert_same(got, expected):
    for mine, theirs in zip(got["steps"], expected["steps"], strict=True):
        assert mine["count"] == theirs["count"]
        for key in ("conversion_from_start", "conversion_from_previous"):
            assert mine[key] == pytest.approx(theirs[key], abs=1e-6)
        assert mine["median_seconds_to_convert"] == pytest.approx(
            theirs["median_seconds_to_convert"], abs=2e-3
        )
    assert [b["users"] for b in got["time_to_convert"]] == expected["time_to_convert"]


def test_strict_order_stops_at_a_skipped_step(analytics_store):
    rows = _minute_rows(
        [
            ("u1", "a", 0),
            ("u1", "c", 1),
            ("u1", "b", 2),
            ("u1", "c", 3),  # c before b: stop
            ("u2", "a", 0),
            ("u2", "a", 1),
            ("u2", "b", 2),
            ("u2", "c", 3),  # a repeated: fine
        ],
        dt.datetime(2024, 1, 2, tzinfo=dt.UTC),
    )
    load(rows)
    steps = (Step("a"), Step("b"), Step("c"))
    common = {"steps": steps, "date_from": dt.date(2024, 1, 1), "date_to": dt.date(2024, 1, 31)}
    strict = funnel(FunnelQuery(order=Order.STRICT, **common))
    sequential = funnel(FunnelQuery(order=Order.SEQUENTIAL, **common))
    assert [s["count"] for s in strict["steps"]] == [2, 1, 1]
    assert [s["count"] for s in sequential["steps"]] == [2, 2, 2]
    assert sequential["steps"][2]["median_seconds_to_convert"] == pytest.approx(60.0)
    assert funnel_dropped_users(
        FunnelQuery(order=Order.STRICT, **common), step=2, limit=10, offset=0
    ) == {"total": 1, "users": ["u1"]}


def test_empty_range(analytics_store):
    result = funnel(
        FunnelQuery(
            steps=(Step("a"), Step("b")), date_from=dt.date(2024, 1, 1), date_to=dt.date(2024, 1, 1)
        )
    )
    assert [s["count"] for s in result["steps"]] == [0, 0]
    assert result["steps"][1]["conversion_from_start"] is None


@FAST
@given(
    rows=events([*NAMES, "x", "y"], props=_props, max_size=60),
    raw_steps=steps_strategy,
    order=st.sampled_from(list(Order)),
    window_days=st.sampled_from([None, 1, 5, 30]),
    own=st.lists(st.sampled_from([None, 3600.0, 86400.0, 5 * 86400.0, 20 * 86400.0]), max_size=3),
    raw_exclusions=st.lists(
        st.tuples(st.sampled_from(["x", "y"]), st.integers(1, 3), st.integers(1, 3)), max_size=2
    ),
    start_day=st.integers(0, 30),
    length=st.integers(0, 60),
    breakdown=st.sampled_from([None, "user_tier"]),
)
def test_funnel_exclusions_and_step_windows_match_pandas(
    analytics_store,
    rows,
    raw_steps,
    order,
    window_days,
    own,
    raw_exclusions,
    start_day,
    length,
    breakdown,
):
    """Exclusion steps (dropped users) and a conversion window per step, through the raw-event
    fold and the rollup, against the reference's own walk over each user's events."""
    frame = load(rows)
    n = len(raw_steps)
    step_windows = ()
    if order is not Order.ANY:
        step_windows = tuple((own + [None] * n)[: n - 1])
    if window_days is None and not (step_windows and all(step_windows)):
        window_days = 14
    exclusions = tuple(
        Exclusion(e, min(i, j), max(i, j))
        for e, i, j in raw_exclusions
        if min(i, j) < max(i, j) <= n
    )
    q = _query(
        raw_steps,
        start_day,
        length,
        window_days=window_days,
        order=order,
        breakdown=Breakdown.parse(breakdown),
        exclusions=exclusions,
        step_windows=step_windows,
    )
    _assert_as_pandas(q, frame)
    if funnels.rollup_serves(q):  # per-step windows on the rollup: the same as the fold
        assert _per_user(funnels.per_user_sql(q), q) == _per_user(funnels._fold_sql_per_user(q), q)


def test_an_exclusion_drops_the_user_and_a_step_window_stops_them(analytics_store):
    t0 = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
    spec = [
        ("u1", "a", 0), ("u1", "x", 1), ("u1", "b", 2), ("u1", "c", 3),  # x between 1 and 2
        ("u2", "a", 0), ("u2", "b", 1), ("u2", "x", 2), ("u2", "c", 3),  # x between 2 and 3
        ("u3", "a", 0), ("u3", "b", 1), ("u3", "c", 300),  # c 299 minutes after b
        ("u4", "x", 0), ("u4", "a", 1), ("u4", "b", 2),  # x before entry: kept
    ]  # fmt: skip
    load(_minute_rows(spec, t0))
    common = {
        "steps": (Step("a"), Step("b"), Step("c")),
        "date_from": dt.date(2024, 1, 1),
        "date_to": dt.date(2024, 1, 31),
    }
    plain = funnel(FunnelQuery(**common))
    assert [s["count"] for s in plain["steps"]] == [4, 4, 3]
    excluded = funnel(FunnelQuery(exclusions=(Exclusion("x", 1, 2),), **common))
    assert [s["count"] for s in excluded["steps"]] == [3, 3, 2]
    excluded = funnel(FunnelQuery(exclusions=(Exclusion("x", 1, 3),), **common))
    assert [s["count"] for s in excluded["steps"]] == [2, 2, 1]
    within = FunnelQuery(step_windows=(None, 3600.0), **common)
    assert funnels.rollup_serves(within)
    assert [s["count"] for s in funnel(within)["steps"]] == [4, 4, 2]
    only_steps = FunnelQuery(**{**common, "window_days": None}, step_windows=(180.0, 3600.0))
    assert [s["count"] for s in funnel(only_steps)["steps"]] == [4, 4, 2]
    assert funnel_dropped_users(within, step=3, limit=10, offset=0) == {
        "total": 2,
        "users": ["u3", "u4"],
    }
