"""The machine APIs: registration, unregistration, notifications, the VAPID key."""

import base64

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from devices import services
from devices.models import Delivery, Device, Notification
from devices.tests.factories import DeviceFactory, apns_token, fcm_token
from testing.push_services import WebPushService

pytestmark = pytest.mark.django_db


def web_subscription(endpoint="https://fcm.googleapis.com/fcm/send/abc123"):
    sub = WebPushService().subscription("x")
    sub["endpoint"] = endpoint
    return sub


def test_register_then_update_then_unregister(machine_client):
    token = apns_token()
    body = {
        "user_id": "u-7",
        "platform": "ios",
        "token": token,
        "app_version": "3.2.0",
        "locale": "en",
        "timezone": "Europe/Lisbon",
    }
    first = machine_client.post("/api/devices/", body, format="json")
    assert first.status_code == 201, first.json()
    assert first.json()["platform"] == "ios" and first.json()["is_active"]
    again = machine_client.post("/api/devices/", {**body, "app_version": "3.3.0"}, format="json")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert again.json()["app_version"] == "3.3.0"

    gone = machine_client.post("/api/devices/unregister/", {"token": token}, format="json")
    assert gone.status_code == 200 and gone.json()["is_active"] is False
    unknown = machine_client.post("/api/devices/unregister/", {"token": "nope"}, format="json")
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"
    neither = machine_client.post("/api/devices/unregister/", {}, format="json")
    assert neither.status_code == 422 and "token" in neither.json()["detail"]


def test_register_web_subscription(machine_client):
    body = {"user_id": "u-7", "platform": "web", "subscription": web_subscription()}
    response = machine_client.post("/api/devices/", body, format="json")
    assert response.status_code == 201, response.json()
    device = Device.objects.get()
    assert device.endpoint == body["subscription"]["endpoint"] and device.token is None
    unregister = machine_client.post(
        "/api/devices/unregister/", {"endpoint": device.endpoint}, format="json"
    )
    assert unregister.status_code == 200


@pytest.mark.parametrize(
    ("endpoint", "allow", "status"),
    [
        ("http://127.0.0.1:8301/push/1", True, 201),
        ("http://localhost:8301/push/1", True, 201),
        ("http://127.0.0.1:8301/push/1", False, 422),
        ("http://push.example.com/push/1", True, 422),
        ("ftp://push.example.com/1", True, 422),
        ("not a url", True, 422),
    ],
)
def test_plain_http_endpoints_only_on_loopback_when_allowed(
    machine_client, settings, endpoint, allow, status
):
    settings.WEBPUSH_ALLOW_HTTP_LOOPBACK = allow
    body = {"user_id": "u", "platform": "web", "subscription": web_subscription(endpoint)}
    response = machine_client.post("/api/devices/", body, format="json")
    assert response.status_code == status
    if status == 422:
        assert list(response.json()["detail"]) == ["subscription.endpoint"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"platform": "windows"}, "platform"),
        ({"token": "zz"}, "token"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"locale": "english please"}, "locale"),
        ({"user_id": ""}, "user_id"),
        ({"user_id": "x" * 65}, "user_id"),
    ],
)
def test_bad_registration_names_the_field(machine_client, change, field):
    body = {"user_id": "u", "platform": "android", "token": fcm_token(), **change}
    response = machine_client.post("/api/devices/", body, format="json")
    # 400: the schema refuses it; 422: a rule the schema cannot state (the token's form for
    # its platform, a zone that exists)
    assert response.status_code in (400, 422)
    assert field in response.json()["detail"]


@pytest.mark.parametrize(
    ("keys", "field"),
    [
        ({"p256dh": "AAAA", "auth": "AAAAAAAAAAAAAAAAAAAAAA"}, "subscription.keys.p256dh"),
        ({"p256dh": None, "auth": "x"}, "subscription"),
        ({"auth": "x"}, "subscription"),
    ],
)
def test_malformed_subscription_keys(machine_client, keys, field):
    sub = web_subscription()
    sub["keys"] = keys
    response = machine_client.post(
        "/api/devices/", {"user_id": "u", "platform": "web", "subscription": sub}, format="json"
    )
    assert response.status_code in (400, 422)
    assert field in response.json()["detail"]


def test_bad_auth_secret_length(machine_client):
    sub = web_subscription()
    sub["keys"]["auth"] = base64.urlsafe_b64encode(b"short").decode()
    response = machine_client.post(
        "/api/devices/", {"user_id": "u", "platform": "web", "subscription": sub}, format="json"
    )
    assert response.status_code == 422
    assert "subscription.keys.auth" in response.json()["detail"]


def test_machine_endpoints_need_a_key(engineer, api_client_for):
    anonymous = APIClient()
    for path in ("/api/devices/", "/api/devices/unregister/", "/api/notifications/"):
        assert anonymous.post(path, {}, format="json").status_code == 401
    assert anonymous.get("/api/devices/vapid-public-key/").status_code == 401
    # A staff token is not a machine key: registering is for the apps only.
    assert api_client_for(engineer).post("/api/devices/", {}, format="json").status_code == 401


def test_vapid_public_key_is_an_uncompressed_p256_point(machine_client, engineer, api_client_for):
    key = machine_client.get("/api/devices/vapid-public-key/").json()["public_key"]
    raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    assert len(raw) == 65 and raw[0] == 4
    assert (
        api_client_for(engineer).get("/api/devices/vapid-public-key/").json()["public_key"] == key
    )


def test_notification_create_is_idempotent_and_readable(
    machine_client, django_capture_on_commit_callbacks
):
    device = DeviceFactory(user_id="u-9")
    body = {
        "user_id": "u-9",
        "type": "VIDEO_COMPLETED",
        "data": {"title": "Ulysses"},
        "idempotency_key": "job-1",
    }
    with django_capture_on_commit_callbacks() as enqueued:
        first = machine_client.post("/api/notifications/", body, format="json")
    assert first.status_code == 202 and first.json()["duplicate"] is False
    assert len(enqueued) == 1
    # What the enqueued task does (the worker path is covered by test_tasks.py).
    services.notifications_dispatch(notification_ids=[first.json()["id"]])
    repeat = machine_client.post("/api/notifications/", body, format="json")
    assert repeat.status_code == 202
    assert repeat.json() == {"id": first.json()["id"], "status": "dispatched", "duplicate": True}
    assert Notification.objects.count() == 1 and Delivery.objects.count() == 1

    detail = machine_client.get(f"/api/notifications/{first.json()['id']}/").json()
    assert detail["status"] == "dispatched"
    [delivery] = detail["deliveries"]
    assert delivery["device_id"] == device.pk and delivery["status"] == "sent"
    assert machine_client.get("/api/notifications/999999/").status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"type": "NEWSLETTER"}, "type"),
        ({"send_at": "tomorrow"}, "send_at"),
        ({"data": ["not", "an", "object"]}, "data"),
        ({"data": {"blob": "x" * 3000}}, "data"),
    ],
)
def test_bad_notification_names_the_field(machine_client, change, field):
    body = {"user_id": "u", "type": "VIDEO_COMPLETED", **change}
    response = machine_client.post("/api/notifications/", body, format="json")
    # data over 2 KB serialized is a rule the schema cannot state: 422
    big = change.get("data") == {"blob": "x" * 3000}
    assert response.status_code == (422 if big else 400) and field in response.json()["detail"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
register_bodies = st.fixed_dictionaries(
    {},
    optional={
        "user_id": json_values,
        "platform": st.sampled_from(["ios", "android", "web", "tv"]) | json_values,
        "token": st.text(max_size=80) | json_values,
        "subscription": json_values
        | st.fixed_dictionaries(
            {
                "endpoint": st.text(max_size=40) | st.just("https://push.example/x"),
                "keys": json_values
                | st.fixed_dictionaries(
                    {"p256dh": st.text(max_size=90), "auth": st.text(max_size=24)}
                ),
            }
        ),
        "timezone": json_values,
        "locale": json_values,
    },
)


@hsettings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=register_bodies)
def test_any_registration_body_gets_a_json_answer_never_a_500(machine_client, body):
    response = machine_client.post("/api/devices/", body, format="json")
    assert response.status_code in (200, 201, 400, 422), response.content
    if response.status_code in (400, 422):
        assert response.json()["error"] in ("invalid", "unprocessable")
        assert response.json()["detail"]


@hsettings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.fixed_dictionaries(
        {},
        optional={
            "user_id": json_values,
            "type": st.sampled_from(["VIDEO_COMPLETED", "X"]) | json_values,
            "data": json_values,
            "send_at": json_values | st.just("2030-01-01T00:00:00Z"),
            "idempotency_key": json_values,
        },
    )
)
def test_any_notification_body_gets_a_json_answer_never_a_500(machine_client, body):
    response = machine_client.post("/api/notifications/", body, format="json")
    assert response.status_code in (202, 400), response.content


def test_vapid_key_unset_in_production_answers_503(machine_client, settings):
    settings.DEMO_MODE = False
    settings.VAPID_PRIVATE_KEY = ""
    response = machine_client.get("/api/devices/vapid-public-key/")
    assert response.status_code == 503 and response.json()["error"] == "not_configured"
