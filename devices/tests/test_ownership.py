"""Registrations belong to whoever holds them: a publishable key (inside every copy of an app)
moves or unregisters a device only with proof of possession; a secret key may."""

import pytest

from devices.models import Device
from devices.tests.factories import fcm_token
from testing.push_services import WebPushService

pytestmark = pytest.mark.django_db


def _register(client, **body):
    return client.post("/api/devices/", body, format="json")


def test_registration_answers_a_secret_once_and_stores_only_its_hash(publishable_client):
    token = fcm_token()
    first = _register(publishable_client, user_id="alice", platform="android", token=token)
    assert first.status_code == 201
    secret = first.json()["registration_secret"]
    assert secret and len(secret) >= 24
    device = Device.objects.get()
    assert secret not in device.secret_hash
    again = _register(publishable_client, user_id="alice", platform="android", token=token)
    assert again.status_code == 200 and again.json()["registration_secret"] is None


def test_publishable_key_cannot_move_another_users_device_without_proof(publishable_client):
    token = fcm_token()
    secret = _register(publishable_client, user_id="alice", platform="android", token=token)
    secret = secret.json()["registration_secret"]
    stolen = _register(publishable_client, user_id="mallory", platform="android", token=token)
    assert stolen.status_code == 403 and stolen.json()["error"] == "forbidden"
    assert "registration_secret" in stolen.json()["detail"]
    wrong = _register(
        publishable_client,
        user_id="mallory",
        platform="android",
        token=token,
        registration_secret="guess",
    )
    assert wrong.status_code == 403
    assert Device.objects.get().user_id == "alice"
    moved = _register(
        publishable_client,
        user_id="bob",
        platform="android",
        token=token,
        registration_secret=secret,
    )
    assert moved.status_code == 200 and moved.json()["user_id"] == "bob"
    rotated = moved.json()["registration_secret"]
    assert rotated and rotated != secret  # the old one no longer proves anything


def test_secret_key_may_move_a_device(publishable_client, machine_client):
    token = fcm_token()
    _register(publishable_client, user_id="alice", platform="android", token=token)
    moved = _register(machine_client, user_id="bob", platform="android", token=token)
    assert moved.status_code == 200 and moved.json()["user_id"] == "bob"


def test_web_subscription_moves_with_its_own_auth_secret_only(publishable_client):
    sub = WebPushService().subscription("x")
    sub["endpoint"] = "https://fcm.googleapis.com/fcm/send/abc"
    first = _register(publishable_client, user_id="a", platform="web", subscription=sub)
    assert first.status_code == 201
    forged = {**sub, "keys": {**sub["keys"], "auth": "QUFBQUFBQUFBQUFBQUFBQQ"}}
    refused = _register(publishable_client, user_id="m", platform="web", subscription=forged)
    assert refused.status_code == 403
    same_browser = _register(publishable_client, user_id="b", platform="web", subscription=sub)
    assert same_browser.status_code == 200 and same_browser.json()["user_id"] == "b"


def test_publishable_unregister_needs_proof(publishable_client, machine_client):
    token = fcm_token()
    secret = _register(publishable_client, user_id="alice", platform="android", token=token)
    secret = secret.json()["registration_secret"]
    refused = publishable_client.post("/api/devices/unregister/", {"token": token}, format="json")
    assert refused.status_code == 403
    assert Device.objects.get().is_active
    gone = publishable_client.post(
        "/api/devices/unregister/",
        {"token": token, "registration_secret": secret},
        format="json",
    )
    assert gone.status_code == 200 and gone.json()["is_active"] is False
    token2 = fcm_token()
    _register(publishable_client, user_id="alice", platform="android", token=token2)
    by_server = machine_client.post("/api/devices/unregister/", {"token": token2}, format="json")
    assert by_server.status_code == 200
