"""The shared parts of the API contract: documented errors, strict JSON types, JSON CSRF errors."""

import re

import pytest
from rest_framework import serializers
from rest_framework.test import APIClient

from core.schema import NO_NUL_PATTERN, NOT_BLANK_PATTERN
from core.strict import JsonObject, StrictJSONParser

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema():
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


class Typed(serializers.Serializer):
    name = serializers.CharField(max_length=5)
    count = serializers.IntegerField(required=False)
    ratio = serializers.FloatField(required=False)
    flag = serializers.BooleanField(required=False)
    kind = serializers.ChoiceField(choices=["1", "b"], required=False)
    at = serializers.DateTimeField(required=False)
    uid = serializers.UUIDField(required=False)
    tags = serializers.ListField(child=serializers.CharField(), required=False)


def _json(data):
    """`data` as StrictJSONParser hands it to a view."""
    import io
    import json

    return StrictJSONParser().parse(io.BytesIO(json.dumps(data).encode()))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", 12),
        ("name", True),
        ("count", "12"),
        ("count", True),
        ("ratio", "0.5"),
        ("flag", "true"),
        ("flag", 1),
        ("kind", 1),
        ("at", 1700000000),
        ("uid", 12345),
        ("tags", ["a", 2]),
    ],
)
def test_a_json_body_value_of_the_wrong_type_is_refused_naming_the_field(field, value):
    data = {"name": "ok", field: value}
    serializer = Typed(data=_json(data))
    assert not serializer.is_valid()
    assert set(serializer.errors) == {field}
    # Data that did not come from a JSON body (a page's dict, a query string) keeps DRF's
    # conversions, which coerce most of these.
    if (field, repr(value)) not in DRF_REFUSES_TOO:
        loose = Typed(data={"name": "ok", field: value})
        assert loose.is_valid(), loose.errors


DRF_REFUSES_TOO = {("name", "True"), ("count", "True"), ("at", "1700000000")}


def test_json_values_of_the_right_type_pass():
    data = _json(
        {
            "name": "ok",
            "count": 3,
            "ratio": 1,
            "flag": False,
            "kind": "1",
            "at": "2026-01-01T00:00:00Z",
            "uid": "2f1c3c58-2d0b-4a4a-9a51-6d1f5f6f2f00",
            "tags": ["x"],
        }
    )
    serializer = Typed(data=data)
    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data["count"] == 3


def test_max_length_counts_the_string_as_sent():
    # DRF trims before it checks the length; the schema's maxLength is about the raw string.
    assert not Typed(data=_json({"name": "  abc  "})).is_valid()
    assert Typed(data={"name": "  abc  "}).is_valid()


def test_the_parser_marks_nested_objects_and_refuses_nan():
    import io

    from rest_framework.exceptions import ParseError

    parsed = StrictJSONParser().parse(io.BytesIO(b'{"a": [{"b": 1}]}'))
    assert isinstance(parsed, JsonObject) and isinstance(parsed["a"][0], JsonObject)
    with pytest.raises(ParseError):
        StrictJSONParser().parse(io.BytesIO(b'{"a": NaN}'))


def test_a_form_post_to_the_api_is_refused_415(api_client_for, engineer):
    response = api_client_for(engineer).post("/api/services/", {"name": "x"}, format="multipart")
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


def test_a_number_for_a_string_is_refused_by_a_real_endpoint(api_client_for, engineer):
    response = api_client_for(engineer).post(
        "/api/services/", {"name": 12345, "namespace": "default", "image": "x"}, format="json"
    )
    assert response.status_code == 400
    assert "name" in response.json()["detail"]


def test_session_post_without_csrf_answers_json_403(client, engineer):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(engineer)
    for path in ("/api/services/", "/api/rollouts/abc/retry/", "/api/no-such-thing/"):
        response = client.post(path, {}, format="json")
        assert response.status_code in (403, 404), path
        assert response["Content-Type"] == "application/json", path
        assert response.json()["error"] in ("forbidden", "not_found"), path
    assert client.post("/api/services/", {}, format="json").status_code == 403


def test_non_integer_id_answers_json_404_without_csrf(api_client_for, engineer):
    response = api_client_for(engineer).post("/api/rollouts/abc/retry/")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_pages_keep_the_html_csrf_page(client, engineer):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(engineer)
    response = browser.post("/logout/")
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")


def test_every_operation_documents_its_errors_with_the_shared_body(schema):
    assert "Error" in schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            errors = {code for code in responses if code[0] in "45"}
            assert errors, f"{method} {path} documents no error"
            for code in errors:
                assert "content" in responses[code], f"{method} {path} {code}"
            if operation.get("security") and {} not in operation["security"]:
                assert {"401", "403"} <= errors, f"{method} {path}"
            if "{" in path:
                assert "404" in errors, f"{method} {path}"
            if "requestBody" in operation:
                assert {"400", "413", "415"} <= errors, f"{method} {path}"
            if any("ApiKeyAuth" in s for s in operation.get("security", [])):
                assert "429" in errors and "Retry-After" in responses["429"]["headers"]


def test_string_patterns_match_what_the_server_refuses():
    no_nul, not_blank = re.compile(NO_NUL_PATTERN), re.compile(NOT_BLANK_PATTERN)
    for text in ["a", " a ", "\u3000x", "x\x1c", "\u200b"]:
        assert bool(not_blank.match(text)) == bool(text.strip())
    for text in ["", " ", "\t\n", "\u3000\u2028\x1c\x85"]:
        assert not not_blank.match(text) and not text.strip()
    assert not no_nul.match("a\x00") and no_nul.match("")
    field = serializers.CharField()
    for text in ["a\x00b", "  "]:
        with pytest.raises(serializers.ValidationError):
            field.run_validation(text)
