"""Identity: `$identify` / `$create_alias` link an anonymous id to a person, and the person's
analyses count the anonymous events as theirs, those stored before the link and those that
arrive after it; the numbers are held to pandas on generated anonymous-then-identified users."""

import datetime as dt
import json
import uuid

import numpy as np
import pandas as pd
import pytest
from django.core.cache import cache
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.catalog import Event
from analytics.events.identity import PER_USER_TABLES, _resolve
from analytics.events.services import events_capture, events_flush
from analytics.product.common import Period
from analytics.product.funnels import FunnelQuery, Step, funnel
from analytics.product.retention import RetentionQuery, retention
from analytics.product.tests import reference
from analytics.product.tests.product_data import BASE, events, load
from analytics.product.tests.test_funnels import _assert_same as assert_same_funnel
from analytics.product.trends import Math, TrendBreakdown, TrendQuery, trends
from analytics.store.bulk import rows_insert
from experiments.results import experiment_results
from experiments.tests.conftest import event_row, exposure_row
from experiments.tests.factories import MetricFactory
from experiments.tests.test_results import _pandas_per_user

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


@pytest.fixture
def api_key(publishable_key):
    return publishable_key


def _event(name, user, at, **props):
    return {
        "event": name,
        "user_id": user,
        "timestamp": at,
        "uuid": str(uuid.uuid4()),
        "properties": props,
    }


def _capture(events):
    result = events_capture(events=events)
    assert not result.rejected, result.rejected
    events_flush()


def _users_of(db, table):
    return {r["user_id"] for r in db.query(f"SELECT DISTINCT user_id FROM {table}")}


def test_identify_moves_past_and_late_anonymous_events_and_rollups(analytics_store):
    db = analytics_store
    past = [
        _event("signup", "anon-1", T0, user_tier="free"),
        _event("session_start", "anon-1", T0 + dt.timedelta(days=1)),
        _event("subscription_started", "anon-1", T0 + dt.timedelta(days=2), tier="pro", mrr=10),
    ]
    _capture(past)
    _capture([_event("session_start", "user-1", T0 + dt.timedelta(days=3))])
    _capture(
        [
            _event(
                "$identify", "user-1", T0 + dt.timedelta(days=3), **{"$anon_distinct_id": "anon-1"}
            )
        ]
    )
    late = _event("session_start", "anon-1", T0 + dt.timedelta(days=4))
    _capture([late])
    _capture([late])  # a retry of the late event: counted once
    stored = db.query(
        "SELECT user_id, count() AS n, uniqExact(uuid) AS u FROM events FINAL GROUP BY user_id"
    )
    assert stored == [{"user_id": "user-1", "n": 6, "u": 6}]
    for table in PER_USER_TABLES[:-1]:
        assert _users_of(db, table) <= {"user-1"}, table
    assert _users_of(db, "panalytics_user_days") == {"user-1"}
    [first] = db.query(
        "SELECT toString(min(first_ts)) AS t FROM panalytics_user_first WHERE event = 'signup' AND user_id = 'user-1'"
    )
    assert first["t"].startswith("2026-01-05 09:00:00")
    users = db.query(
        "SELECT user_id, argMax(tier, updated_at) AS tier, toString(argMax(signup_at, updated_at)) AS s FROM users GROUP BY user_id"
    )
    assert users == [{"user_id": "user-1", "tier": "pro", "s": "2026-01-05 09:00:00.000"}]
    links = db.query("SELECT user_id, person_id, source FROM person_distinct_ids")
    assert links == [{"user_id": "anon-1", "person_id": "user-1", "source": "identify"}]


# --- the analyses, held to pandas on anonymous-then-identified users

PERSONS = ["u0", "u1", "u2"]
ANONYMOUS = ["u3", "u4", "u5"]  # product_data's other users: each may be linked to a person
NAMES = ["signup", "session_start", "project_created"]
FAST = settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _link_event(anon: str, person: str, kind: str) -> dict:
    at = BASE + dt.timedelta(days=50)
    if kind == "identify":  # posthog-js identify(): the user's id, the anonymous one named
        return _event("$identify", person, at, **{"$anon_distinct_id": anon})
    # posthog-python alias(previous_id=anon, distinct_id=person)
    return _event("$create_alias", anon, at, alias=person)


def load_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["uuid", "event", "user_id", "timestamp", "properties"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame


def _as_capture(row: dict) -> dict:
    return {
        "event": row["event"],
        "user_id": row["user_id"],
        "uuid": row["uuid"],
        "timestamp": row["timestamp"].astimezone(dt.timezone(row["tz"])),
        "properties": json.loads(row["properties"]),
    }


@FAST
@given(
    rows=events(NAMES, max_size=50),
    links=st.fixed_dictionaries(
        {
            a: st.tuples(st.sampled_from([*PERSONS, None]), st.sampled_from(["identify", "alias"]))
            for a in ANONYMOUS
        }
    ),
    late=st.sets(st.integers(0, 60)),
    period=st.sampled_from(list(Period)),
    start_day=st.integers(0, 30),
    length=st.integers(10, 80),
)
def test_analyses_count_the_anonymous_events_as_the_persons(
    analytics_store, rows, links, late, period, start_day, length
):
    """Anonymous events stored before the link, and others arriving after it (an offline queue,
    sent twice), are the person's in retention, funnels and trends, exactly as pandas counts
    them on the events with each id replaced by its person."""
    persons = {a: p for a, (p, _kind) in links.items() if p}
    late_rows = [r for i, r in enumerate(rows) if i in late and r["user_id"] in ANONYMOUS]
    late_ids = {id(r) for r in late_rows}
    load([r for r in rows if id(r) not in late_ids])
    link_events = [_link_event(a, p, links[a][1]) for a, p in persons.items()]
    if link_events:
        _capture(link_events)
    if late_rows:
        for _ in range(2):  # an offline queue replayed, then retried
            _capture([_as_capture(r) for r in late_rows])
    cache.clear()
    frame = load_frame(rows)
    frame["user_id"] = frame.user_id.map(lambda u: persons.get(u, u))
    stored = {r["user_id"] for r in analytics_store.query("SELECT DISTINCT user_id FROM events")}
    assert not stored & set(persons)

    date_from = dt.date(2024, 1, 1) + dt.timedelta(days=start_day)
    date_to = date_from + dt.timedelta(days=length)
    got = retention(RetentionQuery(date_from=date_from, date_to=date_to, period=period, periods=6))
    expected = reference.retention(
        frame,
        start_event="signup",
        return_event="session_start",
        period=period.value,
        date_from=date_from,
        date_to=date_to,
        periods=6,
        mode="on",
        cohort_type="first_time",
        breakdown_key=None,
    )
    assert got["cohorts"] == expected

    steps = ("signup", "session_start", "project_created")
    q = FunnelQuery(
        steps=tuple(Step(s) for s in steps), date_from=date_from, date_to=date_to, window_days=14
    )
    levels = reference.funnel_levels(
        frame,
        steps=[(s, "", "") for s in steps],
        date_from=date_from,
        date_to=date_to,
        window_days=14,
        order="sequential",
    )
    assert_same_funnel(funnel(q), reference.funnel(levels, len(steps)))

    for math in (Math.UNIQUE_USERS, Math.TOTAL, Math.PER_USER_AVG):
        tq = TrendQuery(
            series=("session_start", "project_created"),
            date_from=date_from,
            date_to=date_to,
            period=period,
            math=math,
        )
        expected_trend = reference.trend(
            frame,
            series=["session_start", "project_created"],
            date_from=date_from,
            date_to=date_to,
            period=period.value,
            math=math.value,
        )
        assert not reference.trend_differences(trends(tq)["series"], expected_trend)


def test_experiment_results_count_anonymous_exposures_as_the_persons(analytics_store, running):
    """Exposures and conversions sent under an app's anonymous id, then identify: each person
    counts once, in the variant of their first exposure, with conversions from both ids."""
    conv = MetricFactory(key="made", event=Event.PROJECT_CREATED, window_days=7, cuped=False)
    experiment = running(days_ago=12, primary_metric=conv, sequential_testing=False)
    rng = np.random.default_rng(5)
    started = experiment.started_at
    rows, persons = [], {}
    for i in range(400):
        anon, person = f"anon-{i}", f"user-{i}"
        first = started + dt.timedelta(hours=float(rng.uniform(0, 150)))
        variant = "treatment" if rng.random() < 0.5 else "control"
        rows.append(exposure_row(experiment.key, anon, variant, first))
        if rng.random() < 0.8:
            persons[anon] = person
            if rng.random() < 0.3:  # exposed again once signed in: the first exposure counts
                rows.append(exposure_row(experiment.key, person, variant, first + HOUR))
        converts = rng.random() < (0.35 if variant == "treatment" else 0.25)
        if converts:
            who = person if anon in persons and rng.random() < 0.5 else anon
            at = first + dt.timedelta(hours=float(rng.uniform(0, 24 * 8)))
            rows.append(event_row(Event.PROJECT_CREATED, who, at, {}))
    rows_insert(table="events", rows=rows)
    _capture(
        [
            _event("$identify", p, started + dt.timedelta(days=8), **{"$anon_distinct_id": a})
            for a, p in persons.items()
        ]
    )
    result = experiment_results(experiment)
    mapped = [{**r, "user_id": persons.get(r["user_id"], r["user_id"])} for r in rows]
    expected = _pandas_per_user(mapped, experiment.key, Event.PROJECT_CREATED, 7)
    by_variant = {r["key"]: r for r in result["metrics"][0]["variants"]}
    for variant, group in expected.groupby("variant"):
        assert by_variant[variant]["raw"] == {
            "users": len(group),
            "conversions": int(group.value.sum()),
        }
    assert sum(result["srm"]["users"].values()) == 400


@pytest.mark.parametrize(
    ("links", "mapped", "persons", "recorded"),
    [
        # identify: the anonymous id joins the user's person
        ([("identify", "a", "u")], {}, set(), [("a", "u")]),
        # the user's id belongs to a person already: the anonymous id joins that person
        ([("identify", "a", "u2")], {"u2": "u"}, {"u"}, [("a", "u")]),
        # an id keeps its first link
        ([("identify", "a", "v")], {"a": "u"}, {"u"}, []),
        # two persons are never merged: an id others are linked to is never linked itself
        ([("identify", "u", "v")], {"a": "u"}, {"u"}, []),
        # alias, neither taken: distinct_id joins alias (posthog-python's previous_id -> new id)
        ([("alias", "u", "anon")], {}, set(), [("anon", "u")]),
        # alias when distinct_id already belongs to a person (posthog-js alias(new) after
        # identify): the alias joins that person
        ([("alias", "backend-7", "u")], {"a": "u"}, {"u"}, [("backend-7", "u")]),
        ([("alias", "x", "y")], {"x": "p", "y": "q"}, {"p", "q"}, []),
        # in one batch, in time order: the second link of `a` is ignored
        ([("identify", "a", "u"), ("identify", "a", "v")], {}, set(), [("a", "u")]),
        ([("identify", "a", "u"), ("identify", "b", "a")], {}, set(), [("a", "u"), ("b", "u")]),
    ],
)
def test_link_rules(links, mapped, persons, recorded):
    updates = [
        {"link": other, "user_id": user, "kind": kind, "at": f"2026-01-01 00:00:0{i}.000"}
        for i, (kind, other, user) in enumerate(links)
    ]
    new = _resolve(updates, dict(mapped), set(persons))
    assert [(n["user_id"], n["person_id"]) for n in new] == recorded


def test_every_per_user_table_of_the_store_is_handled(analytics_store):
    """A table that a later migration adds with a user_id column must say what a link does to
    its rows: listed in PER_USER_TABLES (deleted, rebuilt from the moved events) or here."""
    rows = analytics_store.query(
        "SELECT DISTINCT table FROM system.columns WHERE database = currentDatabase() "
        "AND name = 'user_id' AND table IN (SELECT name FROM system.tables WHERE "
        "database = currentDatabase() AND engine LIKE '%MergeTree')"
    )
    handled_elsewhere = {"events", "users", "person_distinct_ids", "cohort_members"}
    assert {r["table"] for r in rows} == set(PER_USER_TABLES) | handled_elsewhere


def test_alias_from_the_python_sdk_and_identify_from_posthog_js_bodies(
    analytics_store, api_key, client
):
    """posthog-js sends `$identify` with `$anon_distinct_id` (and its `$set`); the link moves
    the anonymous events captured before it."""
    token = api_key[1]
    anon = "0190a1b2-anon-device"
    body = [
        {
            "event": "$pageview",
            "properties": {"token": token, "distinct_id": anon, "$current_url": "https://a/"},
            "timestamp": "2026-03-01T10:00:00Z",
        },
        {
            "event": "$identify",
            "properties": {
                "token": token,
                "distinct_id": "reader-9",
                "$anon_distinct_id": anon,
                "$set": {"tier": "pro", "country": "BR"},
                "$set_once": {"signup_date": "2026-02-27"},
            },
            "timestamp": "2026-03-01T10:01:00Z",
        },
    ]
    response = client.post("/e/", json.dumps(body), content_type="text/plain")
    assert response.status_code == 200
    events_flush()
    stored = analytics_store.query("SELECT DISTINCT user_id FROM events")
    assert stored == [{"user_id": "reader-9"}]
    [user] = analytics_store.query(
        "SELECT user_id, argMax(tier, updated_at) AS tier, argMax(country, updated_at) AS c, "
        "toString(toDate(argMax(signup_at, updated_at))) AS s FROM users GROUP BY user_id"
    )
    assert user == {"user_id": "reader-9", "tier": "pro", "c": "BR", "s": "2026-02-27"}


@pytest.mark.django_db(transaction=True)
def test_python_sdk_identify_and_alias_against_a_live_server(
    live_asgi, publishable_key, event_buffer, analytics_store
):
    """The real posthog package: its anonymous events, then `$identify` (the event its docs
    give for server-side identify; this version has no identify()) and alias()."""
    from posthog import Posthog

    failures = []
    ph = Posthog(
        publishable_key[1],
        host=live_asgi,
        sync_mode=True,
        enable_local_evaluation=False,
        on_error=lambda exc, batch: failures.append(exc),
    )
    ph.capture("video_rendered", distinct_id="anon-py-1")
    ph.capture("video_rendered", distinct_id="anon-py-2")
    events_flush()
    ph.capture(
        "$identify",
        distinct_id="user-py",
        properties={"$anon_distinct_id": "anon-py-1", "$set": {"tier": "team"}},
    )
    ph.alias(previous_id="anon-py-2", distinct_id="user-py")
    ph.capture("video_rendered", distinct_id="anon-py-1")  # a late event of the old id
    ph.shutdown()
    assert failures == []
    events_flush()
    counts = analytics_store.query(
        "SELECT user_id, event, count() AS n FROM events FINAL GROUP BY user_id, event "
        "ORDER BY event"
    )
    assert counts == [
        {"user_id": "user-py", "event": "$create_alias", "n": 1},
        {"user_id": "user-py", "event": "$identify", "n": 1},
        {"user_id": "user-py", "event": "video_rendered", "n": 3},
    ]
    tiers = analytics_store.query("SELECT argMax(tier, updated_at) AS t FROM users")
    assert tiers == [{"t": "team"}]


# --- person properties


def _person(db, user):
    rows = db.query(
        "SELECT argMax(tier, updated_at) AS tier, argMax(country, updated_at) AS country, "
        "argMax(signup_source, updated_at) AS source, "
        "toString(argMax(signup_at, updated_at)) AS signup FROM users "
        "WHERE user_id = {u:String}",
        {"u": user},
    )
    return rows[0]


def test_set_overwrites_and_set_once_only_fills(analytics_store):
    db = analytics_store
    _capture(
        [
            _event(
                "$pageview",
                "kim",
                T0,
                **{
                    "$set": {"tier": "pro", "country": "DE", "plan_color": "teal"},
                    "$set_once": {"signup_date": "2025-12-24", "signup_source": "ads"},
                },
            )
        ]
    )
    assert _person(db, "kim") == {
        "tier": "pro",
        "country": "DE",
        "source": "ads",
        "signup": "2025-12-24 00:00:00.000",
    }
    _capture(
        [
            _event(
                "$set",
                "kim",
                T0 + HOUR,
                **{
                    "$set": {"country": "FR", "tier": 7},  # a non-text tier is ignored
                    "$set_once": {"signup_source": "email", "signup_date": "2026-01-01"},
                },
            )
        ]
    )
    assert _person(db, "kim") == {
        "tier": "pro",
        "country": "FR",
        "source": "ads",  # $set_once never replaces
        "signup": "2025-12-24 00:00:00.000",
    }
    # A late, older $set fills nothing set already and never overrides the newer value.
    _capture([_event("$set", "kim", T0 - HOUR, **{"$set": {"country": "US"}})])
    assert _person(db, "kim")["country"] == "FR"
    # The tier set this way is the tier enrichment stamps on the user's next events.
    _capture([_event("session_start", "kim", T0 + 2 * HOUR)])
    [row] = db.query("SELECT user_tier FROM events WHERE event = 'session_start'")
    assert row == {"user_tier": "pro"}


def test_person_properties_feed_user_breakdowns(analytics_store):
    day = dt.datetime(2026, 2, 2, 12, tzinfo=dt.UTC)
    _capture(
        [
            _event("$identify", "p1", day, **{"$set": {"tier": "team"}}),
            _event("$identify", "p2", day, **{"$set_once": {"tier": "pro"}}),
            _event("video_rendered", "p1", day),
            _event("video_rendered", "p1", day),
            _event("video_rendered", "p2", day),
        ]
    )
    cache.clear()
    q = TrendQuery(
        series=("video_rendered",),
        date_from=day.date(),
        date_to=day.date(),
        breakdown=TrendBreakdown.parse("user:tier"),
    )
    got = {s["breakdown_value"]: s["points"][0]["value"] for s in trends(q)["series"]}
    assert got == {"team": 2, "pro": 1}
