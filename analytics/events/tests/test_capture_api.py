"""POST /api/events/: validation per field, partial batches, 401/413/429, gzip, hypothesis."""

import gzip
import json
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.events.services import events_flush
from analytics.events.tests.conftest import make_event

URL = "/api/events/"
pytestmark = pytest.mark.django_db


def post(client, body, **extra):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(URL, data=data, content_type="application/json", **extra)


def stored(analytics_store, sql="SELECT count() AS n FROM events"):
    return analytics_store.query(sql)


def test_one_event_is_accepted_buffered_and_flushed(machine_client, event_buffer, analytics_store):
    event_id = str(uuid.uuid4())
    response = post(machine_client, make_event(uuid=event_id))
    assert response.status_code == 202
    assert response.json() == {"accepted": 1, "rejected": []}
    assert stored(analytics_store) == [{"n": 0}]  # buffered, not yet written
    assert events_flush() == 1
    rows = analytics_store.query("SELECT toString(uuid) AS u, event, user_id FROM events")
    assert rows == [{"u": event_id, "event": "video_rendered", "user_id": "user-0"}]


def test_valid_events_of_a_partly_bad_batch_are_kept(machine_client, event_buffer, analytics_store):
    batch = [make_event(0), make_event(1, user_id=""), make_event(2), {"event": "x"}, "nope"]
    response = post(machine_client, {"batch": batch})
    assert response.status_code == 202
    assert response.json() == {
        "accepted": 2,
        "rejected": [
            {"index": 1, "error": "user_id: expected `str` of length >= 1"},
            {"index": 3, "error": "user_id: required"},
            {"index": 4, "error": "event: expected a JSON object"},
        ],
    }
    events_flush()
    assert stored(analytics_store, "SELECT user_id FROM events ORDER BY user_id") == [
        {"user_id": "user-0"},
        {"user_id": "user-2"},
    ]


LONG = "x" * 201


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"event": ""}, "event: expected `str` matching regex"),
        ({"event": "has space"}, "event: expected `str` matching regex"),
        ({"event": "e" * 201}, "event: expected `str` matching regex"),
        ({"event": 5}, "event: expected `str`, got `int`"),
        ({"user_id": ""}, "user_id: expected `str` of length >= 1"),
        ({"user_id": LONG}, "user_id: expected `str` of length <= 200"),
        ({"user_id": None}, "user_id: expected `str`, got `null`"),
        ({"uuid": "not-a-uuid"}, "uuid: invalid UUID"),
        ({"timestamp": "2026-03-01T10:00:00"}, "timestamp: expected `datetime` with a timezone"),
        ({"timestamp": "yesterday"}, "timestamp: invalid RFC3339"),
        ({"timestamp": "1999-12-31T23:59:59Z"}, "timestamp: before 2000-01-01"),
        ({"timestamp": "2999-01-01T00:00:00Z"}, "timestamp: more than 1 hour in the future"),
        ({"properties": [1, 2]}, "properties: expected `object`, got `array`"),
        ({"properties": {"blob": "x" * 33000}}, "properties: larger than 32768 bytes"),
        ({"session_id": LONG}, "session_id: expected `str` of length <= 200"),
        ({"page_url": "u" * 2049}, "page_url: expected `str` of length <= 2048"),
        ({"ip": 12}, "ip: expected `str`, got `int`"),
        ({"distinct_id": "a"}, "distinct_id: unknown field"),
    ],
)
def test_each_field_is_validated(machine_client, event_buffer, change, error):
    response = post(machine_client, {"batch": [make_event(0), make_event(1, **change)]})
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["accepted"] == 1
    assert [r["index"] for r in body["rejected"]] == [1]
    assert body["rejected"][0]["error"].startswith(error), body["rejected"][0]["error"]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"{not json", 400, "body"),
        (b"[1, 2]", 400, "body"),
        (b'{"batch": {}}', 400, "batch"),
        (b'{"batch": []}', 400, "batch"),
        (json.dumps({"batch": [make_event(i) for i in range(1001)]}).encode(), 400, "batch"),
        (b'{"batch": [], "extra": 1}', 400, "extra"),
    ],
)
def test_bad_bodies_name_the_problem(machine_client, event_buffer, body, status, field):
    response = post(machine_client, body)
    assert response.status_code == status
    assert field in response.json()["detail"]


def test_nothing_valid_is_400_listing_every_event(machine_client, event_buffer):
    response = post(machine_client, {"batch": [{"event": "a"}, {"user_id": "u"}]})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid"
    assert body["accepted"] == 0
    assert [r["error"] for r in body["rejected"]] == ["user_id: required", "event: required"]


def test_without_or_with_a_wrong_key_is_401(client, event_buffer):
    assert post(client, make_event()).status_code == 401
    response = post(client, make_event(), HTTP_X_API_KEY="b2v_wrong")
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"


def test_staff_token_cannot_capture(api_client_for, pm, event_buffer):
    response = api_client_for(pm).post(URL, make_event(), format="json")
    assert response.status_code == 401


def test_gzip_body_is_accepted(machine_client, event_buffer, analytics_store):
    body = gzip.compress(json.dumps({"batch": [make_event(i) for i in range(50)]}).encode())
    response = post(machine_client, body, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 202
    assert response.json()["accepted"] == 50
    assert events_flush() == 50


def test_broken_gzip_and_unknown_encoding_are_refused(machine_client, event_buffer):
    response = post(machine_client, b"not gzip at all", HTTP_CONTENT_ENCODING="gzip")
    assert (response.status_code, response.json()["detail"]) == (400, {"body": ["not valid gzip"]})
    response = post(machine_client, b"{}", HTTP_CONTENT_ENCODING="br")
    assert response.status_code == 415


def test_body_over_5_mb_is_413(machine_client, event_buffer):
    big = {"batch": [make_event(i, properties={"pad": "p" * 6000}) for i in range(900)]}
    data = json.dumps(big).encode()
    assert len(data) > 5 * 1024 * 1024
    response = post(machine_client, data)
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"


def test_gzip_that_inflates_over_5_mb_is_413(machine_client, event_buffer):
    bomb = gzip.compress(b'{"batch": [' + b" " * (6 * 1024 * 1024) + b"]}")
    assert len(bomb) < 100_000
    response = post(machine_client, bomb, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 413


def test_rate_limit_per_key_answers_429_with_retry_after(machine_client, api_key, event_buffer):
    key, _raw = api_key
    key.rate_limit_per_second = 2
    key.save()
    codes = [post(machine_client, make_event(i)).status_code for i in range(4)]
    # Two per one-second window; the 4 requests may straddle a window boundary.
    assert codes.count(429) >= 1
    refused = next(
        r for r in (post(machine_client, make_event()) for _ in range(3)) if r.status_code == 429
    )
    assert int(refused["Retry-After"]) >= 1
    assert refused.json()["error"] == "rate_limited"


def test_global_rate_limit_setting_applies_without_a_key_override(
    machine_client, event_buffer, settings
):
    settings.API_KEY_RATE_LIMIT = 1
    codes = [post(machine_client, make_event(i)).status_code for i in range(3)]
    assert 429 in codes


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
event_like = st.fixed_dictionaries(
    {},
    optional={
        "event": st.one_of(st.from_regex(r"[A-Za-z0-9_]{1,12}", fullmatch=True), json_values),
        "user_id": st.one_of(st.text(min_size=1, max_size=12), json_values),
        "timestamp": st.one_of(
            st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()), json_values
        ),
        "uuid": st.one_of(st.uuids().map(str), json_values),
        "properties": st.one_of(st.dictionaries(st.text(max_size=8), json_values), json_values),
        "ip": st.one_of(st.ip_addresses().map(str), json_values),
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch=st.lists(st.one_of(event_like, json_values), min_size=1, max_size=8))
def test_any_json_batch_gets_an_answer_for_every_event(machine_client, event_buffer, batch):
    response = post(machine_client, {"batch": batch})
    assert response.status_code in (202, 400), response.content
    body = response.json()
    rejected = [r["index"] for r in body["rejected"]]
    assert body["accepted"] + len(rejected) == len(batch)
    assert rejected == sorted(set(rejected))
    for r in body["rejected"]:
        field, _, problem = r["error"].partition(": ")
        assert field and problem


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_never_cause_a_server_error(machine_client, event_buffer, raw):
    assert post(machine_client, raw).status_code in (202, 400)


def test_the_serving_version_comes_from_release_app_version_or_x_served_by(
    machine_client, event_buffer, analytics_store
):
    batch = {
        "batch": [
            make_event(0, properties={"n": 0}),  # the header's version
            make_event(1, properties={"n": 1, "release": "api-gateway:v3"}),  # its own wins
            make_event(2, properties={"n": 2, "$app_version": "2.4.1"}),  # the header's
        ]
    }
    response = post(machine_client, batch, HTTP_X_SERVED_BY=" video-renderer:v7-quality-fault ")
    assert response.status_code == 202
    third = post(machine_client, make_event(3, properties={"n": 3, "$app_version": "2.4.1"}))
    assert third.status_code == 202
    assert post(machine_client, make_event(4, properties={"n": 4})).status_code == 202
    events_flush()
    rows = analytics_store.query(
        "SELECT JSONExtractInt(properties, 'n') AS n, release, "
        "JSONHas(properties, 'release') AS has FROM events ORDER BY n"
    )
    assert rows == [
        {"n": 0, "release": "video-renderer:v7-quality-fault", "has": 1},
        {"n": 1, "release": "api-gateway:v3", "has": 1},
        {"n": 2, "release": "video-renderer:v7-quality-fault", "has": 1},
        {"n": 3, "release": "2.4.1", "has": 0},  # no header: $app_version, stored as sent
        {"n": 4, "release": "", "has": 0},
    ]


def test_a_malformed_x_served_by_is_400_naming_the_header(machine_client, event_buffer):
    for value in ("video renderer v7", "x" * 201, "v7;drop"):
        response = post(machine_client, make_event(0), HTTP_X_SERVED_BY=value)
        assert response.status_code == 400
        assert "X-Served-By" in response.json()["detail"]
