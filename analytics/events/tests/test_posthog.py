"""PostHog-compatible capture: the wire formats PostHog SDKs send, and the real Python SDK
(`posthog` from PyPI) pointed at a live server."""

import base64
import datetime as dt
import gzip
import json
import uuid
from urllib.parse import urlencode

import pytest

from analytics.events.api import DECIDE_ANSWER
from analytics.events.services import events_flush


@pytest.fixture
def api_key(publishable_key):
    """SDKs carry a publishable key (a secret key is refused outside X-Api-Key)."""
    return publishable_key


pytestmark = pytest.mark.django_db
PATHS = ["/batch/", "/capture/", "/e/", "/i/v0/e/", "/track/"]


def rows(analytics_store, where="1"):
    return analytics_store.query(
        "SELECT toString(uuid) AS uuid, event, user_id, toUnixTimestamp64Milli(timestamp) AS ms, "
        "properties, session_id, "
        f"page_url FROM events WHERE {where} ORDER BY timestamp, event"
    )


def js_event(token, i=0, **extra):
    """An event as posthog-js builds it: token and distinct_id inside properties."""
    return {
        "event": "video_rendered",
        "uuid": str(uuid.uuid4()),
        "timestamp": "2026-03-01T10:00:00.000Z",
        "properties": {
            "token": token,
            "distinct_id": f"anon-{i}",
            "$session_id": "s-1",
            "$current_url": "https://app.example.com/videos",
            "$device_type": "Desktop",
            "n": i,
        },
        **extra,
    }


@pytest.mark.parametrize("path", PATHS)
def test_every_capture_path_takes_a_server_sdk_batch(path, api_key, client, event_buffer):
    body = {
        "api_key": api_key[1],
        "batch": [
            {"event": "signup", "distinct_id": "u1", "properties": {"a": 1}},
            {"event": "video_rendered", "distinct_id": "u1", "timestamp": "2026-03-01T10:00Z"},
        ],
    }
    response = client.post(path, json.dumps(body), content_type="application/json")
    assert response.status_code == 200
    assert response.json() == {"status": 1, "accepted": 2, "rejected": []}
    assert response["Access-Control-Allow-Origin"] == "*"


def test_posthog_js_gzip_js_body_keeps_session_url_and_person_properties(
    api_key, client, event_buffer, analytics_store
):
    event = js_event(api_key[1], **{"$set": {"tier": "pro"}, "$set_once": {"signup": "2026-01"}})
    raw = gzip.compress(json.dumps([event]).encode())
    response = client.post(
        "/e/?compression=gzip-js&ver=1.0&_=1772359200000", raw, content_type="text/plain"
    )
    assert response.status_code == 200, response.content
    events_flush()
    [row] = rows(analytics_store)
    assert row["uuid"] == event["uuid"]
    assert row["user_id"] == "anon-0"
    assert row["session_id"] == "s-1"
    assert row["page_url"] == "https://app.example.com/videos"
    props = json.loads(row["properties"])
    assert props["$set"] == {"tier": "pro"}
    assert props["$set_once"] == {"signup": "2026-01"}
    assert props["$device_type"] == "Desktop"
    assert "token" not in props and "distinct_id" not in props


def test_base64_form_body(api_key, client, event_buffer, analytics_store):
    data = base64.b64encode(json.dumps(js_event(api_key[1])).encode()).decode()
    response = client.post(
        "/e/?compression=base64",
        urlencode({"data": data}),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200, response.content
    events_flush()
    assert [r["user_id"] for r in rows(analytics_store)] == ["anon-0"]


def test_sent_at_corrects_the_device_clock(api_key, client, event_buffer, analytics_store):
    """A device whose clock runs 2 hours ahead: its event, stamped 5 minutes before it sent,
    lands 5 minutes before our receipt."""
    now = dt.datetime.now(dt.UTC)
    device_now = now + dt.timedelta(hours=2)
    body = {
        "api_key": api_key[1],
        "sent_at": device_now.isoformat(),
        "batch": [
            {
                "event": "video_rendered",
                "distinct_id": "u1",
                "timestamp": (device_now - dt.timedelta(minutes=5)).isoformat(),
            },
            {"event": "offset_event", "distinct_id": "u1", "offset": 60_000},
        ],
    }
    assert client.post("/batch/", json.dumps(body), content_type="application/json").status_code
    events_flush()
    stamps = {r["event"]: r["ms"] / 1000 for r in rows(analytics_store)}
    expected = (now - dt.timedelta(minutes=5)).timestamp()
    assert abs(stamps["video_rendered"] - expected) < 30
    assert abs(stamps["offset_event"] - (now - dt.timedelta(minutes=1)).timestamp()) < 30


def test_offline_queue_replayed_three_days_late_twice_counts_once(
    api_key, client, event_buffer, analytics_store
):
    """An SDK offline for three days flushes its queue, and a retry sends it again: the events
    land on their own days and each uuid counts once."""
    now = dt.datetime.now(dt.UTC)
    batch = [
        {
            "event": "video_rendered",
            "distinct_id": "traveller",
            "uuid": str(uuid.uuid4()),
            "timestamp": (now - dt.timedelta(days=3, hours=h)).isoformat(),
        }
        for h in range(5)
    ]
    body = json.dumps({"api_key": api_key[1], "sent_at": now.isoformat(), "batch": batch})
    for _ in range(2):
        response = client.post("/batch/", body, content_type="application/json")
        assert response.status_code == 200
        events_flush()
    [counted] = analytics_store.query(
        "SELECT count(DISTINCT uuid) AS n, count() AS all_rows, "
        "toString(min(toDate(timestamp))) AS day FROM events FINAL"
    )
    assert counted["n"] == 5
    assert counted["all_rows"] == 5
    assert counted["day"] <= (now - dt.timedelta(days=3)).date().isoformat()


def test_answers_tell_the_sdk_what_to_drop(api_key, client, event_buffer):
    ok = js_event(api_key[1])
    bad = {"event": "has space?", "properties": {"distinct_id": "u"}}
    partial = client.post("/batch/", json.dumps([ok, bad]), content_type="application/json")
    assert partial.status_code == 200
    assert partial.json()["rejected"][0]["index"] == 1
    only_bad = client.post(
        "/batch/", json.dumps({"api_key": api_key[1], "batch": [bad]}), "application/json"
    )
    assert only_bad.status_code == 400
    no_token = client.post("/batch/", json.dumps({"batch": [bad]}), "application/json")
    assert no_token.status_code == 401
    assert no_token.json()["detail"] == {"api_key": ["no project token sent"]}
    wrong = client.post("/batch/?token=nope", json.dumps([ok | {"properties": {}}]), "text/plain")
    assert wrong.status_code == 401
    assert client.post("/e/", b"{not json", content_type="text/plain").status_code == 400
    bad_gzip = client.post("/e/?compression=gzip-js", b"\x1f\x8bxx", content_type="text/plain")
    assert bad_gzip.status_code == 400
    assert bad_gzip.json()["detail"] == {"body": ["not valid gzip"]}


@pytest.mark.parametrize("path", ["/decide/?v=4", "/flags/?v=2&config=true"])
def test_start_up_calls_get_a_minimal_answer(path, client):
    response = client.post(path, "{}", content_type="application/json")
    assert response.status_code == 200
    assert response.json() == DECIDE_ANSWER


@pytest.mark.django_db(transaction=True)
def test_python_sdk_sends_to_a_live_server(live_asgi, api_key, event_buffer, analytics_store):
    from posthog import Posthog

    failures = []
    ph = Posthog(
        api_key[1],
        host=live_asgi,
        gzip=True,
        sync_mode=True,
        enable_local_evaluation=False,
        on_error=lambda exc, batch: failures.append(exc),
    )
    event_id = ph.capture(
        "video_rendered", distinct_id="user-py", properties={"video_style": "noir"}
    )
    ph.set(distinct_id="user-py", properties={"tier": "pro"})
    ph.alias(previous_id="anon-py", distinct_id="user-py")
    ph.shutdown()
    assert failures == []
    events_flush()
    stored = {r["event"]: r for r in rows(analytics_store)}
    assert set(stored) == {"video_rendered", "$set", "$create_alias"}
    assert stored["video_rendered"]["uuid"] == event_id
    assert stored["video_rendered"]["user_id"] == "user-py"
    assert json.loads(stored["video_rendered"]["properties"])["video_style"] == "noir"
    assert json.loads(stored["$set"]["properties"])["$set"] == {"tier": "pro"}


def test_typed_fast_path_gives_the_events_of_the_general_path():
    """The one-pass decoder of well-formed server-SDK batches is a shortcut, never a different
    answer: both paths give the same events for the same body."""
    import msgspec

    from analytics.events import posthog
    from analytics.events.schema import EventIn

    now = dt.datetime.now(dt.UTC)
    body = {
        "api_key": "k",
        "sent_at": (now + dt.timedelta(minutes=3)).isoformat(),
        "batch": [
            {
                "event": "$pageview",
                "distinct_id": f"u{i}",
                "uuid": str(uuid.uuid4()),
                "properties": {"$session_id": "s", "$current_url": "https://x/y", "token": "k"},
                "$set": {"tier": "pro"} if i % 2 else None,
                **({"timestamp": (now - dt.timedelta(hours=i)).isoformat()} if i % 3 else {}),
                **({"offset": 1500} if i % 3 == 0 else {}),
            }
            for i in range(9)
        ],
    }
    for item in body["batch"]:
        if item["$set"] is None:
            del item["$set"]
    data = json.dumps(body).encode()
    fast = posthog._typed_batch(data, now=now, sent_at=None)
    general = posthog.wire_batch(json.loads(data), now=now)
    assert fast is not None and fast.token == general.token == "k"
    assert fast.events == msgspec.convert(general.events, list[EventIn])
    # anything unusual goes the general way
    odd = json.dumps({**body, "batch": [{**body["batch"][0], "distinct_id": 7}]}).encode()
    assert posthog._typed_batch(odd, now=now, sent_at=None) is None
    assert posthog.wire_events(odd, now=now).events[0]["user_id"] == "7"


def test_x_served_by_reaches_events_sent_by_an_sdk(api_key, client, event_buffer, analytics_store):
    body = {"api_key": api_key[1], "batch": [{"event": "signup", "distinct_id": "u1"}]}
    response = client.post(
        "/batch/",
        json.dumps(body),
        content_type="application/json",
        HTTP_X_SERVED_BY="book-parser:v2",
    )
    assert response.status_code == 200
    events_flush()
    assert analytics_store.query("SELECT release FROM events") == [{"release": "book-parser:v2"}]
    refused = client.post(
        "/batch/", json.dumps(body), content_type="application/json", HTTP_X_SERVED_BY="a b"
    )
    assert refused.status_code == 400 and "X-Served-By" in refused.json()["detail"]
