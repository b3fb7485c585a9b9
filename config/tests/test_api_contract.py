"""The published OpenAPI schema and the server agree (the API contract; README).

Static: every /api/ route is in the schema and every operation documents its errors with the
shared body. Dynamic: schemathesis generates cases from the schema for every operation (a few
valid and a few invalid ones each) and runs every check of .ci/schemathesis.toml on the
answers, in-process. The full campaign (more cases, the stateful phase, a live server, the
publishable key) is .ci/api-contract, which CI runs. Nothing here may be skipped: schemathesis
is a pinned development requirement.
"""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from testing.contract import Credentials, connection_kept, load_schema, run

pytestmark = pytest.mark.django_db

EXAMPLES_PER_MODE = 3


def _api_routes(patterns=None, prefix="") -> set[str]:
    """Every /api/ route of the URLconf, as an OpenAPI path template."""
    routes = set()
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            routes |= _api_routes(entry.url_patterns, route)
        elif isinstance(entry, URLPattern) and route.startswith("api/"):
            routes.add("/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route))
    return routes


@pytest.fixture
def schema_document(client):
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def test_every_api_route_is_in_the_schema(schema_document):
    def shape(path: str) -> str:  # parameter names aside (the schema says id for pk)
        return re.sub(r"\{\w+\}", "{}", path)

    documented = {shape(path) for path in schema_document["paths"]}
    # The schema itself and its docs page are not operations.
    routes = {shape(r) for r in _api_routes()} - {"/api/schema/", "/api/docs/"}
    assert routes - documented == set()
    assert len(documented) >= 40


def test_every_operation_documents_its_errors_with_the_shared_body(schema_document):
    for path, operations in schema_document["paths"].items():
        for method, operation in operations.items():
            errors = {code: r for code, r in operation["responses"].items() if code[0] in "45"}
            assert errors, f"{method.upper()} {path} documents no error response"
            for code, response in errors.items():
                body = response.get("content", {}).get("application/json", {}).get("schema")
                assert body, f"{method.upper()} {path} {code} has no body"


@pytest.fixture
def credentials(analytics_store, admin_user, settings):
    from rest_framework.authtoken.models import Token

    from core.services import api_key_create

    settings.ALERT_WEBHOOK_TOKEN = "contract-alert-token"
    _, secret = api_key_create(name="contract-secret", kind="secret", by=None)
    _, publishable = api_key_create(name="contract-publishable", kind="publishable", by=None)
    token, _ = Token.objects.get_or_create(user=admin_user)
    return Credentials(
        staff_token=token.key,
        api_key=secret,
        publishable_key=publishable,
        alert_token=settings.ALERT_WEBHOOK_TOKEN,
    )


def test_the_server_does_what_the_schema_says(credentials):
    with connection_kept():
        schema = load_schema(credentials)
        outcome = run(schema, credentials, examples=EXAMPLES_PER_MODE)
    assert len(outcome.operations) >= 50 and outcome.cases >= len(outcome.operations) * 2
    report = "\n\n".join(
        f"{label}:\n  " + "\n  ".join(problems) for label, problems in outcome.failures.items()
    )
    assert not outcome.failures, f"{len(outcome.failures)} operations break the contract:\n{report}"
