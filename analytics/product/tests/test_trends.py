"""Trends: every point of every series against the pandas reference, on random events."""

import datetime as dt
import json

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from analytics.product.common import Period, UserSelect
from analytics.product.tests import reference
from analytics.product.tests.product_data import USERS, events, load
from analytics.product.trends import (
    OTHER,
    Math,
    Op,
    PropertyFilter,
    TrendBreakdown,
    TrendQuery,
    evaluate,
    parse_formula,
    trend_series,
    trends,
)
from analytics.store import store
from core.errors import InvalidRequest

pytestmark = pytest.mark.django_db
FAST = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
NAMES = ["a", "b", "c"]
TIERS = dict(zip(USERS, ["free", "pro", "pro", "team", "free", "x"], strict=True))


def _props(draw, name):
    props = {"style": draw(st.sampled_from(["x", "y", "xy", "", "zz"]))}
    n = draw(st.sampled_from([None, 0, 1, 2.5, -3, 7, 10, "5", True]))
    if n is not None:
        props["n"] = n
    return props


filters_strategy = st.lists(
    st.sampled_from(
        [
            ("style", "eq", "x"),
            ("style", "neq", "y"),
            ("style", "contains", "x"),
            ("style", "not_contains", "z"),
            ("style", "regex", "^x"),
            ("style", "regex", "[xy]{2}|^$"),
            ("n", "gt", "1.0"),
            ("n", "lte", "2.5"),
            ("n", "is_set", ""),
            ("n", "is_not_set", ""),
            ("user_tier", "eq", "pro"),
        ]
    ),
    max_size=2,
)


def _users_table() -> None:
    """The users dimension; a later row of the same user wins (ReplacingMergeTree)."""
    db = store()
    db.command("TRUNCATE TABLE users")
    rows = [{"user_id": u, "signup_at": "2024-01-01 00:00:00", "tier": "old"} for u in TIERS]
    rows = [{**r, "updated_at": "2024-01-01 00:00:00"} for r in rows]
    db.insert("users", rows)
    db.insert(
        "users",
        [
            {"user_id": u, "signup_at": "2024-01-01 00:00:00", "tier": t}
            | {"updated_at": "2024-02-01 00:00:00"}
            for u, t in TIERS.items()
        ],
    )


@FAST
@given(
    rows=events(NAMES, props=_props, max_size=60),
    series=st.lists(st.sampled_from(NAMES), min_size=1, max_size=2, unique=True),
    math=st.sampled_from(list(Math)),
    period=st.sampled_from(list(Period)),
    start_day=st.integers(0, 40),
    length=st.integers(0, 60),
    filters=filters_strategy,
    breakdown=st.sampled_from([None, "prop:style", "user_tier", "user:tier"]),
    limit=st.integers(1, 3),
    compare=st.booleans(),
)
def test_trends_match_pandas(
    analytics_store,
    rows,
    series,
    math,
    period,
    start_day,
    length,
    filters,
    breakdown,
    limit,
    compare,
):
    frame = load(rows)
    _users_table()
    date_from = dt.date(2024, 1, 1) + dt.timedelta(days=start_day)
    date_to = date_from + dt.timedelta(days=length)
    q = TrendQuery(
        series=tuple(series),
        date_from=date_from,
        date_to=date_to,
        period=period,
        math=math,
        math_property="n" if math.needs_property else "",
        filters=tuple(PropertyFilter(k, Op(o), v) for k, o, v in filters),
        breakdown=TrendBreakdown.parse(breakdown),
        breakdown_limit=limit,
        compare=compare,
    )
    got = trends(q)["series"]
    spec = None
    if breakdown == "user:tier":
        spec = ("user", "tier")
    elif breakdown:
        spec = ("event", {"prop:style": "style", "user_tier": "user_tier"}[breakdown])
    common = {
        "series": series,
        "period": period.value,
        "math": math.value,
        "math_property": "n",
        "filters": filters,
        "breakdown": spec,
        "user_props": TIERS,
        "limit": limit,
        "rank_from": date_from,
        "rank_to": date_to,
    }
    expected = reference.trend(frame, date_from=date_from, date_to=date_to, **common)
    assert not reference.trend_differences(got, expected)
    current = [s for s in got if s["compare"] == "current"]
    if compare:
        prev_from, prev_to = q.previous_range()
        assert (prev_to - prev_from) == (date_to - date_from) and prev_to < date_from
        expected = reference.trend(frame, date_from=prev_from, date_to=prev_to, **common)
        assert not reference.trend_differences(got, expected, "previous")
    else:
        assert all(s["compare"] == "current" for s in got)
    if breakdown:
        values = {s["breakdown_value"] for s in current if s["breakdown_value"] != OTHER}
        assert len(values) <= limit * len(series)


def test_one_point_per_period_start_with_zeros(analytics_store):
    load([])
    q = TrendQuery(
        series=("signup",),
        date_from=dt.date(2024, 1, 31),
        date_to=dt.date(2024, 4, 2),
        period=Period.MONTH,
    )
    (s,) = trend_series(query=q)
    assert s["points"] == [
        {"period": d, "value": 0} for d in ("2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01")
    ]
    assert s["breakdown_value"] is None and s["label"] == "A"


def test_formula_and_user_filter(analytics_store):
    start = dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC)
    spec = [("u0", "a", 0), ("u1", "a", 0), ("u1", "b", 0), ("u2", "a", 1), ("u2", "b", 1)]
    rows = [
        {
            "uuid": f"00000000-0000-0000-0000-{i:012d}",
            "event": e,
            "user_id": u,
            "timestamp": start + dt.timedelta(days=d),
            "properties": json.dumps({}),
            "tz": dt.timedelta(0),
        }
        for i, (u, e, d) in enumerate(spec)
    ]
    load(rows)
    base = {"series": ("a", "b"), "date_from": dt.date(2024, 1, 1), "date_to": dt.date(2024, 1, 3)}
    got = trend_series(query=TrendQuery(**base, formula="(A-B)/A"))
    (formula,) = [s for s in got if s["event"] is None]
    assert formula["label"] == "(A-B)/A"
    assert [p["value"] for p in formula["points"]] == [0.5, 0.0, None]  # day 3: 0/0
    cohort = UserSelect(
        "test:u1u2",
        "SELECT arrayJoin({uf_users:Array(String)}) AS user_id",
        {"uf_users": ["u1", "u2"]},
    )
    got = trend_series(query=TrendQuery(**base, user_filter=cohort))
    assert [p["value"] for p in got[0]["points"]] == [1, 1, 0]


@pytest.mark.parametrize(
    ("text", "env", "value"),
    [
        ("A/B", {"A": 1, "B": 4}, 0.25),
        ("(A-B)/A", {"A": 4, "B": 1}, 0.75),
        ("-A+2*B", {"A": 1, "B": 3}, 5),
        ("A/(B-B)", {"A": 1, "B": 2}, None),
    ],
)
def test_formulas_evaluate(text, env, value):
    assert evaluate(parse_formula(text, 2), env) == value


@pytest.mark.parametrize("text", ["A/", "C", "A+import", "(A", "A B", ""])
def test_bad_formulas_name_the_field(text):
    with pytest.raises(InvalidRequest) as err:
        parse_formula(text, 2)
    assert err.value.field == "formula"
