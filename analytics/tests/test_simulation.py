"""The event generator against the real embedded store: contract, determinism, consistency.

Every figure is checked with an independent computation (pandas over the raw rows, or the
simulation's latent truth), never with the generator's own counters alone.
"""

import datetime as dt
import io
import json
import os

import msgspec
import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from analytics import demo
from analytics.catalog import BOOK_TYPES, FEATURES, TIER_MRR, TIERS, VIDEO_STYLES, Event
from analytics.events.enrich import device_type, geo_country
from analytics.events.schema import MAX_BATCH, decode_valid_body, validate_events
from analytics.simulation import (
    CAPTURE_AGENTS,
    CAPTURE_IPS,
    COUNTRIES,
    PLATFORMS,
    GenerationSpec,
    capture_payloads,
    generate,
)

END = dt.datetime(2026, 6, 30, 23, 59, tzinfo=dt.UTC)
SPEC = GenerationSpec(users=400, months=6, seed=7, end=END)

# the properties the catalog promises per event (enrichment adds four more to each)
CONTRACT = {
    Event.SIGNUP: {"signup_source"},
    Event.SESSION_START: {"platform"},
    Event.SESSION_END: {"duration_seconds"},
    Event.PROJECT_CREATED: {"book_type"},
    Event.VIDEO_RENDERED: {"video_style", "book_type", "ai_service", "ai_cost_dollars"},
    Event.VIDEO_COMPLETED: {
        "video_style",
        "book_type",
        "video_duration_seconds",
        "processing_seconds",
        "completion_rate",
        "ai_service",
        "ai_cost_dollars",
    },
    Event.FEATURE_USED: {"feature"},
    Event.SUBSCRIPTION_STARTED: {"tier", "mrr", "previous_tier"},
    Event.SUBSCRIPTION_UPGRADED: {"tier", "mrr", "previous_tier", "previous_mrr"},
    Event.SUBSCRIPTION_DOWNGRADED: {"tier", "mrr", "previous_tier", "previous_mrr"},
    Event.SUBSCRIPTION_CANCELLED: {"previous_tier", "previous_mrr", "reason"},
    Event.PAYMENT: {"amount", "tier"},
    Event.SATISFACTION_SCORE: {"score", "video_style"},
    Event.SUPPORT_TICKET: {"category"},
}
ENRICHMENT = {"user_tier", "device_type", "is_mobile", "geo_country"}
ADDED = {"platform"}  # the generator's addition: the session's platform on in-session events


@pytest.fixture(scope="module")
def generated(django_db_blocker):
    from analytics.store import store

    db = store()
    for table in ("events", "users"):
        db.command(f"TRUNCATE TABLE {table}")
    result = generate(SPEC, keep_truth=True)
    events = db.query_df(
        "SELECT toString(uuid) AS uuid, event, user_id, timestamp, properties, session_id, "
        "user_tier, country FROM events FINAL"
    )
    events["props"] = events["properties"].map(json.loads)
    users = db.query_df("SELECT * FROM users FINAL")
    yield result, events, users, pd.concat(result.truth)
    for table in ("events", "users"):
        db.command(f"TRUNCATE TABLE {table}")


def test_counts_match_the_rows_in_the_store(generated):
    result, events, users, truth = generated
    assert result.users == len(users) == len(truth) == SPEC.users
    assert result.events == len(events) == events["uuid"].nunique()
    assert events.groupby("event").size().to_dict() == result.per_event
    assert set(result.per_event) == set(CONTRACT)


def test_every_event_follows_the_catalog(generated):
    _, events, _, _ = generated
    for name, expected in CONTRACT.items():
        keys = events.loc[events["event"] == name, "props"].map(lambda p: frozenset(p))
        for present in set(keys):
            assert expected | ENRICHMENT <= present, name
            assert present - expected - ENRICHMENT <= ADDED, name
    props = pd.json_normalize(events["props"].tolist())
    assert set(props["user_tier"]) <= set(TIERS)
    assert (events["user_tier"] == props["user_tier"]).all()  # materialized column agrees
    assert set(props["video_style"].dropna()) <= set(VIDEO_STYLES)
    assert set(props["book_type"].dropna()) <= set(BOOK_TYPES)
    assert set(props["feature"].dropna()) <= set(FEATURES)
    assert props["score"].dropna().between(1, 10).all()
    assert props["completion_rate"].dropna().between(0, 1).all()
    stamps = pd.to_datetime(events["timestamp"], utc=True)
    assert stamps.min() >= pd.Timestamp(SPEC.start_at) and stamps.max() <= pd.Timestamp(END)


def test_same_seed_writes_the_same_rows(generated):
    from analytics.store import store

    result, events, _, _ = generated
    again = generate(SPEC)
    assert again.events == result.events
    distinct = store().query("SELECT uniqExact(uuid) AS n FROM events")[0]["n"]
    assert distinct == len(events)


def test_revenue_is_consistent_with_subscriptions(generated):
    _, events, users, _ = generated
    props = pd.json_normalize(events["props"].tolist())
    frame = pd.concat([events[["event", "user_id", "timestamp"]], props], axis=1)
    for name in (Event.SUBSCRIPTION_STARTED, Event.SUBSCRIPTION_UPGRADED):
        rows = frame[frame["event"] == name]
        assert (rows["mrr"] == rows["tier"].map(TIER_MRR)).all()
    up = frame[frame["event"] == Event.SUBSCRIPTION_UPGRADED]
    assert (up["tier"].map(TIERS.index) > up["previous_tier"].map(TIERS.index)).all()
    pay = frame[frame["event"] == Event.PAYMENT]
    assert len(pay) and (pay["amount"] == pay["tier"].map(TIER_MRR)).all()
    assert (pay["tier"] == pay["user_tier"]).all()
    # every payer has started a subscription before paying
    started = frame[frame["event"] == Event.SUBSCRIPTION_STARTED].set_index("user_id")["timestamp"]
    assert (pay["timestamp"].to_numpy() >= started.loc[pay["user_id"]].to_numpy()).all()
    # the users dimension's tier is the tier of the user's latest event... or free when cancelled
    last = frame.sort_values("timestamp").groupby("user_id")["user_tier"].last()
    cancelled = set(frame.loc[frame["event"] == Event.SUBSCRIPTION_CANCELLED, "user_id"])
    dim = users.set_index("user_id")["tier"]
    for user_id, tier in last.items():
        assert dim[user_id] == ("free" if user_id in cancelled else tier)


def test_sessions_pair_up_and_churned_users_stay_silent(generated):
    _, events, _, truth = generated
    sessions = events[events["event"].isin([Event.SESSION_START, Event.SESSION_END])]
    pairs = sessions.groupby("session_id")["event"].agg(sorted)
    assert (pairs.map(len) == 2).all()
    last_seen = pd.to_datetime(events.groupby("user_id")["timestamp"].max(), utc=True)
    churned = truth.dropna(subset=["churned_at"]).set_index("user_id")["churned_at"]
    slack = pd.Timedelta(hours=12)  # a session or render may finish after the last start
    assert (last_seen.loc[churned.index] <= churned + slack).all()
    assert 0.2 < len(churned) / len(truth) < 0.9


def test_pre_churn_signal_is_visible_in_satisfaction(generated):
    """The documented signal: scores in the 21 days before churn are ~2.5 points lower."""
    _, events, _, truth = generated
    scores = events[events["event"] == Event.SATISFACTION_SCORE].copy()
    scores["score"] = scores["props"].map(lambda p: p["score"])
    scores = scores.merge(truth[["user_id", "churned_at"]], on="user_id")
    at = pd.to_datetime(scores["timestamp"], utc=True)
    declining = (scores["churned_at"] - at) < pd.Timedelta(days=21)
    assert scores.loc[~declining, "score"].mean() - scores.loc[declining, "score"].mean() > 1.5


def test_spec_refuses_bad_input():
    for bad in (
        {"users": 0, "months": 3},
        {"users": 5, "months": 0},
        {"users": 5, "months": 3, "seed": -1},
    ):
        with pytest.raises(ValueError):
            GenerationSpec(**bad)
    with pytest.raises(ValueError, match="id_prefix"):
        GenerationSpec(users=5, months=3, id_prefix="x'; DROP")


def test_command_writes_and_reports(analytics_store):
    out = io.StringIO()
    call_command(
        "generate_events", users=30, months=2, seed=3, end=dt.date(2026, 1, 31), stdout=out
    )
    n = analytics_store.query("SELECT count() AS n FROM events FINAL")[0]["n"]
    assert f"generated {n:,} events for 30 users" in out.getvalue()
    with pytest.raises(CommandError, match="months"):
        call_command("generate_events", users=3, months=0, stdout=out)


def test_demo_seed_is_idempotent(analytics_store, monkeypatch, db):  # db: the demo cohorts
    monkeypatch.setattr(demo, "DEMO_USERS", 60)
    out = io.StringIO()
    demo.seed(stdout=out)
    first = analytics_store.query("SELECT count() AS n FROM events")[0]["n"]
    demo.seed(stdout=out)
    assert analytics_store.query("SELECT count() AS n FROM events")[0]["n"] == first > 0
    assert "skipped" in out.getvalue()
    assert analytics_store.query("SELECT uniqExact(user_id) AS n FROM users")[0]["n"] == 60


@pytest.mark.skipif(
    bool(os.environ.get("CLICKHOUSE_EMULATOR_PYTHON")),
    reason="the simulation builds property JSON in SQL, and the oldest engine (24.8) writes a "
    "few floats differently; the payloads equal the stored rows on the newest engine",
)
def test_capture_payloads_are_valid_and_are_the_generated_events(generated):
    _, events, _, _ = generated
    payloads = list(capture_payloads(SPEC))
    body = msgspec.json.encode(payloads)
    checked = validate_events(msgspec.json.decode(body), now=dt.datetime.now(dt.UTC))
    assert not checked.rejected and len(checked.events) == len(payloads) == len(events)
    for first in range(0, len(payloads), MAX_BATCH):  # the capture API's fast path takes them
        assert decode_valid_body(msgspec.json.encode({"batch": payloads[first:][:MAX_BATCH]}))
    # the same events as generate's rows, properties without what enrichment adds (the store
    # writes a whole Float64 as 195, the payload as 195.0: equal as numbers)
    stamps = pd.to_datetime(events["timestamp"], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
    stored = sorted(
        (
            e,
            u,
            t[:23] + "Z",
            tuple(sorted((k, v) for k, v in p.items() if k not in ENRICHMENT)),
        )
        for e, u, t, p in zip(
            events["event"], events["user_id"], stamps, events["props"], strict=True
        )
    )
    sent = sorted(
        (p["event"], p["user_id"], p["timestamp"], tuple(sorted(p["properties"].items())))
        for p in payloads
    )
    assert sent == stored
    stamps = [p["timestamp"] for p in payloads[:5000]]  # one chunk: in time order
    assert stamps == sorted(stamps)


def test_capture_payloads_are_deterministic_and_enrich_to_the_simulated_user():
    spec = GenerationSpec(users=50, months=2, seed=11, end=END)
    first = list(capture_payloads(spec))
    assert first == list(capture_payloads(spec))
    assert first != list(capture_payloads(GenerationSpec(users=50, months=2, seed=12, end=END)))
    assert list(capture_payloads(spec, limit=100)) == first[:100]
    # the capture path's enrichment reads the simulated platform and country back
    assert [device_type(a) for a in CAPTURE_AGENTS] == ["mobile", "mobile", "desktop"]
    assert len(CAPTURE_AGENTS) == len(PLATFORMS)
    assert [geo_country(ip) for ip in CAPTURE_IPS] == list(COUNTRIES)
