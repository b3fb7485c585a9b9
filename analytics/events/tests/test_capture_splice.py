"""Single-user captures read the user's tier and append in one Redis round trip, splicing the
tier into rows built without it. The rows must be exactly those of the two-round-trip path:
checked here over hypothesis-made properties and tiers (quotes, backslashes and control
characters in a tier take the fallback), on the real Redis buffer."""

import json
import uuid

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from analytics.events.buffer import buffer_clear, buffer_keys, tier_cached, user_tiers_forget
from analytics.events.services import events_capture
from analytics.events.tests.conftest import IPHONE
from core.redis import redis_client

pytestmark = pytest.mark.django_db

_keys = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12).filter(
    lambda k: k != "user_tier"
)
_values = st.one_of(st.integers(-(10**6), 10**6), st.text(max_size=12), st.booleans())
_properties = st.dictionaries(_keys, _values, max_size=4)
_tiers = st.one_of(st.none(), st.sampled_from(["pro", "free"]), st.text(min_size=1, max_size=8))


def _stream_rows() -> list[dict]:
    rows = []
    for _id, fields in redis_client().xrange(buffer_keys().stream):
        for line in fields[b"rows"].split(b"\n"):
            row = json.loads(line)
            row.pop("received_at")  # the time of each capture call
            rows.append(row)
    return rows


def _capture_both_ways(
    events: list[dict], tier: str | None, user: str, *, ip="8.8.8.8", user_agent=IPHONE
) -> tuple[list, list]:
    buffer_clear()
    user_tiers_forget()
    if tier is not None:
        redis_client().hset(buffer_keys().tiers, user, tier)
    first = events_capture(events=events, ip=ip, user_agent=user_agent)  # spliced
    assert tier_cached(user) == (True, tier)
    spliced = _stream_rows()
    redis_client().delete(buffer_keys().stream)
    second = events_capture(events=events, ip=ip, user_agent=user_agent)  # tier known here
    assert first.accepted == second.accepted == len(events)
    return spliced, _stream_rows()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    properties=st.lists(_properties, min_size=1, max_size=3),
    tier=_tiers,
    client_tier=st.booleans(),
)
@example(properties=[{"a": 1}], tier='pr"o\\\n', client_tier=False)  # the fallback path
def test_spliced_rows_equal_the_two_round_trip_rows(event_buffer, properties, tier, client_tier):
    user = f"splice-{uuid.uuid4()}"
    events = [
        {
            "uuid": str(uuid.uuid4()),
            "event": "project_created",
            "user_id": user,
            "timestamp": "2026-11-20T10:00:00+00:00",
            "properties": {**p, **({"user_tier": "own"} if client_tier and i == 0 else {})},
        }
        for i, p in enumerate(properties)
    ]
    spliced, plain = _capture_both_ways(events, tier, user)
    assert spliced == plain
    for row, event in zip(spliced, events, strict=True):
        sent = json.loads(row["properties"])
        expected_tier = event["properties"].get("user_tier", tier)
        assert sent.get("user_tier") == expected_tier
        assert {k: sent[k] for k in event["properties"]} == event["properties"]


def test_empty_properties_and_unknown_users(event_buffer):
    """Nothing to enrich: the tier is the properties' only key (or there is none)."""
    for tier in ("enterprise", None):
        user = f"splice-{uuid.uuid4()}"
        event = {
            "event": "session_started",
            "user_id": user,
            "timestamp": "2026-11-20T10:00:00+00:00",
            "properties": {},
        }
        spliced, plain = _capture_both_ways([event], tier, user, ip="", user_agent="")
        # generated uuids differ between the two calls; everything else is the same
        assert [dict(r, uuid="") for r in spliced] == [dict(r, uuid="") for r in plain]
        expected = {"user_tier": tier} if tier else {}
        assert json.loads(spliced[0]["properties"]) == expected
