"""API authentication (token, session, X-Api-Key), JSON error bodies and the OpenAPI schema."""

import io

import pytest
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from core.models import ApiKey, AuditEntry
from core.services import api_key_revoke

pytestmark = pytest.mark.django_db


def test_token_auth_returns_user_and_roles(api_client_for, engineer):
    response = api_client_for(engineer).get("/api/me/")
    assert response.status_code == 200
    assert response.json() == {"username": engineer.username, "roles": ["engineer"]}


def test_session_auth_works_for_pages_calling_the_api(client, pm):
    client.force_login(pm)
    assert client.get("/api/me/").json()["roles"] == ["product"]


def test_create_api_key_prints_the_key_on_the_last_line():
    out = io.StringIO()
    call_command("create_api_key", "video-pipeline", stdout=out)
    raw = out.getvalue().strip().splitlines()[-1]
    key = ApiKey.objects.get(name="video-pipeline")
    assert key.key_hash == ApiKey.hash_key(raw)
    assert raw not in (key.key_hash, key.prefix)  # only the hash is stored
    assert AuditEntry.objects.filter(action="api_key.create", target_id=str(key.pk)).exists()


def test_api_key_authenticates_but_has_no_staff_role(machine_client):
    # A machine client is known (not 401) but may not use staff endpoints.
    response = machine_client.get("/api/me/")
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"


def test_invalid_and_revoked_api_keys_answer_401(api_key):
    client = APIClient()
    client.credentials(HTTP_X_API_KEY="b2v_not-a-key")
    response = client.get("/api/me/")
    assert response.status_code == 401
    assert response.json() == {
        "error": "not_authenticated",
        "detail": "X-Api-Key is not a valid, active key",
    }
    api_key_revoke(key=api_key[0], by=None)
    client.credentials(HTTP_X_API_KEY=api_key[1])
    assert client.get("/api/me/").status_code == 401


@settings(
    max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(header=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=300))
def test_any_api_key_header_gets_a_4xx_json_answer(header):
    client = APIClient()
    response = client.get("/api/me/", HTTP_X_API_KEY=header)
    assert response.status_code in (401, 403)
    assert "error" in response.json()


def test_unknown_api_path_is_json_404(client):
    response = client.get("/api/no-such-thing/")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_unexpected_error_in_api_is_json_500(client, engineer, monkeypatch):
    from core import api

    def boom(self, request):
        raise RuntimeError("boom")

    monkeypatch.setattr(api.MeApi, "get", boom)
    client.force_login(engineer)
    client.raise_request_exception = False
    response = client.get("/api/me/")
    assert response.status_code == 500
    assert response.json() == {
        "error": "server_error",
        "detail": "an unexpected error occurred; it was logged",
    }


def test_openapi_schema_is_public_and_docs_need_login(client, engineer):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    assert "/api/me/" in schema["paths"]
    assert "ApiKeyAuth" in schema["components"]["securitySchemes"]
    assert client.get("/api/docs/").status_code in (401, 403)
    client.force_login(engineer)
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"cdn" not in docs.content.lower()


def test_audit_record_names_actor_action_target(engineer):
    from core.services import audit_record

    entry = audit_record(actor=engineer, action="thing.do", target=engineer, detail="because")
    assert (entry.actor, entry.actor_label, entry.action, entry.target_type, entry.detail) == (
        engineer,
        engineer.username,
        "thing.do",
        "auth.user",
        "because",
    )
    alert = audit_record(actor="alert:HighErrorRate", action="rollout.abort")
    assert alert.actor is None and alert.actor_label == "alert:HighErrorRate"


def test_audit_log_is_read_only_in_admin(client, admin_user, engineer):
    from core.services import audit_record

    entry = audit_record(actor=engineer, action="x", detail="y")
    client.force_login(admin_user)
    assert client.get("/admin/platform_site/auditentry/").status_code == 200
    assert client.get("/admin/platform_site/auditentry/add/").status_code == 403
    assert (
        client.post(
            f"/admin/platform_site/auditentry/{entry.pk}/delete/", {"post": "yes"}
        ).status_code
        == 403
    )
