"""Key kinds and scopes, the helper for keys passed outside X-Api-Key, per-key rate limits."""

import io

import pytest
from django.core.management import CommandError, call_command
from rest_framework.exceptions import Throttled
from rest_framework.test import APIClient

from core.api_keys import (
    InvalidApiKey,
    KeyKind,
    Scope,
    ScopeDenied,
    authenticate_publishable,
    key_scopes,
)
from core.models import ApiKey
from core.services import api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db


def _last_line_key(*args) -> ApiKey:
    out = io.StringIO()
    call_command("create_api_key", *args, stdout=out)
    raw = out.getvalue().strip().splitlines()[-1]
    return ApiKey.objects.get(key_hash=ApiKey.hash_key(raw)), raw


def test_create_api_key_is_publishable_by_default_and_takes_kind_and_scopes():
    key, raw = _last_line_key("web-app")
    assert key.kind == KeyKind.PUBLISHABLE and raw.startswith("b2v_pk_")
    assert key_scopes(key) == {
        Scope.EVENTS_CAPTURE,
        Scope.EXPERIMENTS_ASSIGN,
        Scope.EXPERIMENTS_PAYLOAD,
        Scope.DEVICES,
    }
    key, raw = _last_line_key("pipeline", "--kind", "secret", "--scopes", "notifications")
    assert key.kind == KeyKind.SECRET and raw.startswith("b2v_sk_")
    assert key_scopes(key) == {Scope.NOTIFICATIONS}


def test_create_api_key_refuses_an_unknown_scope_naming_it():
    with pytest.raises(CommandError, match="unknown scope 'everything'"):
        call_command("create_api_key", "x", "--scopes", "events:capture,everything")


def test_a_publishable_key_never_holds_secret_scopes_even_when_listed():
    key, _ = api_key_create(name="app", kind="publishable", scopes=["notifications", "devices"])
    assert key_scopes(key) == {Scope.DEVICES}


def test_publishable_key_is_refused_on_notification_create_and_read(
    publishable_client, machine_client
):
    body = {"user_id": "u-1", "type": "VIDEO_COMPLETED", "data": {"title": "t"}}
    refused = publishable_client.post("/api/notifications/", body, format="json")
    assert refused.status_code == 403
    assert refused.json()["error"] == "forbidden"
    assert "notifications" in refused.json()["detail"]
    created = machine_client.post("/api/notifications/", body, format="json").json()
    read = publishable_client.get(f"/api/notifications/{created['id']}/")
    assert read.status_code == 403 and read.json()["error"] == "forbidden"


def test_another_keys_notification_answers_404(machine_client, engineer, api_client_for):
    body = {"user_id": "u-1", "type": "VIDEO_COMPLETED", "idempotency_key": "k-1"}
    mine = machine_client.post("/api/notifications/", body, format="json").json()
    _, other_raw = api_key_create(name="other-server", kind="secret")
    other = APIClient()
    other.credentials(HTTP_X_API_KEY=other_raw)
    response = other.get(f"/api/notifications/{mine['id']}/")
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    # The same idempotency key from another key is another notification, not a way in.
    theirs = other.post("/api/notifications/", body, format="json").json()
    assert theirs["id"] != mine["id"] and theirs["duplicate"] is False
    assert machine_client.get(f"/api/notifications/{mine['id']}/").status_code == 200
    assert api_client_for(engineer).get(f"/api/notifications/{mine['id']}/").status_code == 200


def test_a_key_without_a_scope_is_refused_naming_it():
    _, raw = api_key_create(name="capture-only", kind="publishable", scopes=["events:capture"])
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw)
    response = client.get("/api/devices/vapid-public-key/")
    assert response.status_code == 403
    assert "devices" in response.json()["detail"]


def test_authenticate_publishable_returns_the_key_or_raises_clear_errors():
    key, raw = api_key_create(name="app", kind="publishable")
    assert authenticate_publishable(raw, scope=Scope.EXPERIMENTS_PAYLOAD).pk == key.pk
    assert ApiKey.objects.get(pk=key.pk).last_used_at is not None
    with pytest.raises(InvalidApiKey):
        authenticate_publishable("b2v_pk_nope", scope=Scope.EVENTS_CAPTURE)
    with pytest.raises(InvalidApiKey):
        authenticate_publishable(None, scope=Scope.EVENTS_CAPTURE)
    _, secret_raw = api_key_create(name="server", kind="secret")
    with pytest.raises(ScopeDenied, match="only a publishable key"):
        authenticate_publishable(secret_raw, scope=Scope.EVENTS_CAPTURE)
    _, narrow = api_key_create(name="narrow", kind="publishable", scopes=["events:capture"])
    with pytest.raises(ScopeDenied, match="experiments:assign"):
        authenticate_publishable(narrow, scope=Scope.EXPERIMENTS_ASSIGN)
    api_key_revoke(key=key, by=None)
    with pytest.raises(InvalidApiKey):
        authenticate_publishable(raw, scope=Scope.EVENTS_CAPTURE)


def _frozen_clock(monkeypatch):
    # One fixed instant inside a one-second window, so a slow machine cannot spread the calls
    # over two windows.
    import core.api_keys

    monkeypatch.setattr(core.api_keys.time, "time", lambda: 1_900_000_000.25)


def test_authenticate_publishable_counts_the_rate_limit(monkeypatch):
    _frozen_clock(monkeypatch)
    _, raw = api_key_create(name="app", kind="publishable", rate_limit_per_second=2)
    authenticate_publishable(raw, scope=Scope.EVENTS_CAPTURE)
    authenticate_publishable(raw, scope=Scope.EVENTS_CAPTURE)
    with pytest.raises(Throttled) as refused:
        authenticate_publishable(raw, scope=Scope.EVENTS_CAPTURE)
    assert refused.value.wait == 1
    authenticate_publishable(raw, scope=Scope.EVENTS_CAPTURE, rate_limit=False)


def test_rate_limit_is_on_by_default_for_every_keyed_endpoint(
    publishable_client, settings, monkeypatch
):
    from django.conf import settings as live

    assert live.API_KEY_RATE_LIMIT > 0  # the default, not a test override
    _frozen_clock(monkeypatch)
    settings.API_KEY_RATE_LIMIT = 2
    answers = [publishable_client.get("/api/devices/vapid-public-key/") for _ in range(3)]
    assert [a.status_code for a in answers[:2]] != [429, 429]
    assert answers[2].status_code == 429
    assert answers[2]["Retry-After"] == "1"
    assert answers[2].json()["error"] == "rate_limited"


def test_admin_shows_kind_scopes_and_last_use(admin_user, client):
    api_key_create(name="app", kind="publishable", scopes=["devices"])
    client.force_login(admin_user)
    page = client.get("/admin/platform_site/apikey/").content.decode()
    assert "publishable" in page and "devices" in page and "last used" in page.lower()


def test_admin_creates_a_secret_key_with_scopes(admin_user, client):
    client.force_login(admin_user)
    response = client.post(
        "/admin/platform_site/apikey/add/",
        {"name": "pipeline", "kind": "secret", "scopes": ["notifications"], "is_active": "on"},
        follow=True,
    )
    assert response.status_code == 200
    key = ApiKey.objects.get(name="pipeline")
    assert key.kind == "secret" and key.granted_scopes == ["notifications"]
    assert "shown once" in response.content.decode()


def test_drf_create_token_prints_a_40_hex_token(engineer):
    import re

    out = io.StringIO()
    call_command("drf_create_token", engineer.username, stdout=out)
    assert re.fullmatch(
        rf"Generated token [0-9a-f]{{40}} for user {engineer.username}", out.getvalue().strip()
    )


def test_sdk_paths_refuse_a_secret_key_in_the_url_or_body(api_key, publishable_key, client):
    assert client.get(f"/api/features/{api_key[1]}").status_code == 403
    assert client.get(f"/api/features/{publishable_key[1]}").status_code == 200
    body = {"api_key": api_key[1], "batch": [{"event": "x", "distinct_id": "u"}]}
    refused = client.post("/batch/", body, content_type="application/json")
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
