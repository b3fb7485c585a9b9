"""`in_cohort` on the analyses: a cohort-filtered funnel and retention equal the pandas
reference run over the members' events only (random events, members and parameters)."""

import datetime as dt
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.cohorts.models import Cohort
from analytics.cohorts.selectors import CohortFilter
from analytics.product.common import Breakdown, Period
from analytics.product.funnels import FunnelQuery, Order, Step, funnel
from analytics.product.retention import CohortType, Mode, RetentionQuery, retention
from analytics.product.tests import reference
from analytics.product.tests.product_data import USERS, events, load
from analytics.store import store

pytestmark = pytest.mark.django_db
FAST = settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
members_strategy = st.sets(st.sampled_from(USERS))


def _members(members: set) -> CohortFilter:
    db = store()
    db.command("TRUNCATE TABLE cohort_members")
    rows = [{"cohort_id": 5, "version": 2, "user_id": u} for u in sorted(members)]
    rows.append({"cohort_id": 5, "version": 1, "user_id": "u0"})  # an older version: ignored
    db.insert("cohort_members", rows)
    return CohortFilter(5, 2)


@FAST
@given(
    rows=events(["a", "b", "c"], max_size=50),
    members=members_strategy,
    order=st.sampled_from(list(Order)),
    window_days=st.integers(1, 40),
    length=st.integers(0, 80),
)
def test_funnel_in_cohort_matches_pandas(
    analytics_store, rows, members, order, window_days, length
):
    frame = load(rows)
    cohort = _members(members)
    date_from = dt.date(2024, 1, 1)
    date_to = date_from + dt.timedelta(days=length)
    steps = (Step("a"), Step("b"), Step("c"))
    q = FunnelQuery(steps, date_from, date_to, window_days, order, None, Period.WEEK, cohort)
    got = funnel(q)
    levels = reference.funnel_levels(
        frame[frame.user_id.isin(members)],
        steps=[(s.event, "", "") for s in steps],
        date_from=date_from,
        date_to=date_to,
        window_days=window_days,
        order=order.value,
        breakdown_key=None,
    )
    expected = reference.funnel(levels, len(steps))
    assert [s["count"] for s in got["steps"]] == [s["count"] for s in expected["steps"]]


@FAST
@given(
    rows=events(["signup", "session_start"]),
    members=members_strategy,
    period=st.sampled_from(list(Period)),
    cohort_type=st.sampled_from(list(CohortType)),
)
def test_retention_in_cohort_matches_pandas(analytics_store, rows, members, period, cohort_type):
    frame = load(rows)
    cohort = _members(members)
    date_from, date_to = dt.date(2024, 1, 1), dt.date(2024, 3, 31)
    q = RetentionQuery(
        date_from=date_from,
        date_to=date_to,
        period=period,
        cohort_type=cohort_type,
        in_cohort=cohort,
    )
    expected = reference.retention(
        frame[frame.user_id.isin(members)],
        start_event="signup",
        return_event="session_start",
        period=period.value,
        date_from=date_from,
        date_to=date_to,
        periods=12,
        mode=Mode.ON.value,
        cohort_type=cohort_type.value,
        breakdown_key=None,
    )
    assert retention(q)["cohorts"] == expected


def test_api_filters_by_cohort_and_names_bad_ids(analytics_store, pm, api_client_for, client):
    api = api_client_for(pm)
    never = Cohort.objects.create(name="never computed", kind="dynamic", definition={})
    for value, problem, code in [
        ("x", "valid integer", 400),
        ("999", "no cohort", 404),
        (never.pk, "not been computed", 409),
    ]:
        answer = api.get(f"/api/analytics/funnel/?steps=a,b&in_cohort={value}")
        assert answer.status_code == code
        assert problem in answer.json()["detail"]["in_cohort"][0]
    client.force_login(pm)
    page = client.get("/analytics/funnel/?steps=a,b&in_cohort=999")
    assert page.status_code == 400 and b"no cohort with id 999" in page.content


def _beta() -> None:
    """Cohort 5 named beta, whose version 2 is the one `_members` wrote."""
    Cohort.objects.update_or_create(
        pk=5, defaults={"name": "beta", "kind": "static", "version": 2, "last_version": 2}
    )


@FAST
@given(
    rows=events(["a", "b", "c"], max_size=50),
    members=members_strategy,
    order=st.sampled_from(list(Order)),
)
def test_funnel_cohort_breakdown_matches_pandas(analytics_store, rows, members, order):
    frame = load(rows)
    _members(members)
    _beta()
    date_from, date_to = dt.date(2024, 1, 1), dt.date(2024, 3, 31)
    steps = (Step("a"), Step("b"), Step("c"))
    got = funnel(
        FunnelQuery(steps, date_from, date_to, 14, order, Breakdown.parse("cohort:5"), Period.WEEK)
    )
    levels = reference.funnel_levels(
        frame,
        steps=[(s.event, "", "") for s in steps],
        date_from=date_from,
        date_to=date_to,
        window_days=14,
        order=order.value,
        breakdown_key=None,
    )
    levels["bval"] = levels.user_id.map(lambda u: "beta" if u in members else "not in beta")
    groups = {g["breakdown"]: g for g in got["breakdowns"]}
    assert set(groups) == set(levels.bval)
    for value, part in levels.groupby("bval"):
        expected = reference.funnel(part, len(steps))
        assert [s["count"] for s in groups[value]["steps"]] == [
            s["count"] for s in expected["steps"]
        ]


@FAST
@given(
    rows=events(["signup", "session_start"]),
    members=members_strategy,
    cohort_type=st.sampled_from(list(CohortType)),
)
def test_retention_cohort_breakdown_matches_pandas(analytics_store, rows, members, cohort_type):
    frame = load(rows)
    _members(members)
    _beta()
    date_from, date_to = dt.date(2024, 1, 1), dt.date(2024, 3, 31)
    got = retention(
        RetentionQuery(
            date_from=date_from,
            date_to=date_to,
            period=Period.MONTH,
            cohort_type=cohort_type,
            breakdown=Breakdown.parse("cohort:5"),
        )
    )
    frame["properties"] = [
        json.dumps({"grp": "beta" if u in members else "not in beta"}) for u in frame.user_id
    ]
    expected = reference.retention(
        frame,
        start_event="signup",
        return_event="session_start",
        period="month",
        date_from=date_from,
        date_to=date_to,
        periods=12,
        mode=Mode.ON.value,
        cohort_type=cohort_type.value,
        breakdown_key="grp",
    )
    assert got["cohorts"] == expected
