"""The OpenAPI schema as a contract: every operation documents the errors it really answers.

`ContractAutoSchema` (REST_FRAMEWORK's DEFAULT_SCHEMA_CLASS) adds to each /api/ operation the
error responses that follow from how the view is built, all with the shared error body
`{"error": <code>, "detail": <message, or {field: [problems]}>}` (core.errors):

| status | when | documented for |
|---|---|---|
| 400 | a body, query or header parameter is invalid, or the JSON is malformed | operations with a body or query parameters |
| 401 | no credentials, or wrong / expired ones | operations that need authentication |
| 403 | the caller's role, key kind or scope does not allow it; a session without its CSRF token | operations with a permission |
| 404 | no object with this id (or not the caller's); an id in the body or query names none | operations with path, query or body parameters |
| 409 | an id in the body or query names an object whose state does not allow this | operations with query or body parameters |
| 413 | the body is larger than its route's limit (core.body_limit) | operations with a body |
| 415 | the body is not of a documented media type | operations with a body |
| 422 | the request matches the schema but breaks a rule the schema cannot state (a date range that ends before it starts); `detail` names the field | operations with query or body parameters |
| 429 | the API key's rate limit; `Retry-After` says when to try again | operations an X-Api-Key reaches |

Views raise these through core.errors: InvalidRequest (400), MissingReference (404),
StateConflict (409), Unprocessable (422), or a serializer ValidationError with the code
core.errors.NOT_FOUND / CONFLICT / UNPROCESSABLE.

409, 503 and any other status a view answers on purpose are declared by the view itself
(`@extend_schema(responses={409: OpenApiResponse(description=...)})`); an error response
declared without a body gets the shared error body here. A view's own declaration of a status
(its description, its body) wins over the automatic one.

Strings in requests also say what the server refuses (core.strict enforces the JSON side):
no NUL character anywhere, and a field that may not be blank needs one non-space character.
A list that may not be empty has `minItems: 1`, a JSON field that may not be null is not
nullable.
"""

from django.core.validators import RegexValidator
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny

ERROR_COMPONENT = "Error"

ERROR_SCHEMA = {
    "type": "object",
    "description": "The body of every error answer (core.errors).",
    "properties": {
        "error": {
            "type": "string",
            "description": "A stable code: invalid, malformed, not_authenticated, forbidden, "
            "not_found, conflict, too_large, unsupported_media_type, rate_limited, ...",
        },
        "detail": {
            "description": "A message, or for invalid input an object naming each field at "
            "fault with its problems (nested for nested fields and list items).",
            "oneOf": [
                {"type": "string"},
                {"type": "object", "additionalProperties": True},
                {"type": "array", "items": {}},
            ],
        },
    },
    "required": ["error", "detail"],
}

DESCRIPTIONS = {
    "400": "Invalid request: `detail` names each field (or parameter) at fault.",
    "401": "No credentials, or wrong or expired ones.",
    "403": "The caller's role, key kind or scope does not allow this (or a session request "
    "without its CSRF token).",
    "404": "No such object (or it is not the caller's), or an id given in the request names "
    "none: `detail` names the field.",
    "409": "An object named in the request is in a state that does not allow this: `detail` "
    "names the field.",
    "413": "The body is larger than this route's limit.",
    "415": "The body is not in a documented media type.",
    "422": "The request matches this schema but breaks a rule the schema cannot state (such as "
    "a date range that ends before it starts): `detail` names the field and the rule.",
    "429": "The API key's rate limit: try again after `Retry-After` seconds.",
}

RETRY_AFTER = {
    "Retry-After": {
        "schema": {"type": "integer"},
        "description": "Seconds until the key may call again.",
    }
}

# Python's str.strip() removes exactly these (str.isspace()); a field that may not be blank
# needs one character outside them (and no NUL).
_SPACES = "".join(chr(c) for c in range(0x110000) if chr(c).isspace())


def _char_class(chars: str) -> str:
    """The body of a regex character class matching `chars`, runs written as ranges."""
    codes = sorted(ord(c) for c in chars)
    runs: list[list[int]] = []
    for code in codes:
        if runs and code == runs[-1][1] + 1:
            runs[-1][1] = code
        else:
            runs.append([code, code])
    return "".join(f"\\u{a:04x}" if a == b else f"\\u{a:04x}-\\u{b:04x}" for a, b in runs)


NO_NUL_PATTERN = "^[^\\u0000]*$"
NOT_BLANK_PATTERN = f"^[^\\u0000]*[^\\u0000{_char_class(_SPACES)}][^\\u0000]*$"


# Path ids name database integers: 1..MAX_ID (a larger one is a 404, not an overflow).
MAX_ID = 2**31 - 1

COMMON_ERRORS = {
    400: "a field is invalid (named in detail)",
    401: "not authenticated",
    403: "the role does not allow this",
}


def id_parameter(what: str, name: str = "id") -> OpenApiParameter:
    """The path parameter naming one object by its id (`what`: its description)."""
    return OpenApiParameter(
        name,
        {"type": "integer", "minimum": 1, "maximum": MAX_ID},
        OpenApiParameter.PATH,
        description=what,
    )


def error_responses(codes, described: dict[int, str]) -> dict:
    """A view's declared error answers with its own descriptions (`described` adds to or
    overrides COMMON_ERRORS); each gets the shared error body from ContractAutoSchema."""
    text = COMMON_ERRORS | described
    return {code: OpenApiResponse(description=text[code]) for code in codes}


class ContractAutoSchema(AutoSchema):
    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None or not path.startswith("/api/"):
            return operation
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "query" and not parameter.get("required"):
                _empty_means_absent(parameter)
        responses = operation["responses"]
        for status in self._error_statuses(path, operation):
            responses.setdefault(status, {"description": DESCRIPTIONS[status]})
        if "429" in responses:
            responses["429"].setdefault("headers", {}).update(RETRY_AFTER)
        for status, response in responses.items():
            if status[0] in "45" and "content" not in response:
                response["content"] = {"application/json": {"schema": self._error_ref()}}
        return operation

    def _map_serializer(self, serializer, direction, bypass_extensions=False):
        schema = super()._map_serializer(serializer, direction, bypass_extensions)
        # A serializer may add what its fields cannot say (additionalProperties: false, ...).
        extra = getattr(serializer, "schema_extra", None)
        if extra and direction == "request":
            schema.update(extra)
        return schema

    def _error_ref(self) -> dict:
        component = ResolvedComponent(
            name=ERROR_COMPONENT,
            type=ResolvedComponent.SCHEMA,
            object=ERROR_COMPONENT,
            schema=ERROR_SCHEMA,
        )
        self.registry.register_on_missing(component)
        return component.ref

    def _error_statuses(self, path: str, operation: dict) -> list[str]:
        view = self.view
        statuses = []
        parameters = operation.get("parameters", [])
        has_body = "requestBody" in operation
        has_input = has_body or any(p["in"] in ("query", "header") for p in parameters)
        if has_input:
            statuses.append("400")
        permissions = view.get_permissions()
        guarded = any(not isinstance(p, AllowAny) for p in permissions)
        authenticators = view.get_authenticators()
        if guarded and authenticators:
            statuses.append("401")
        if guarded or (
            has_body and any(isinstance(a, SessionAuthentication) for a in authenticators)
        ):
            statuses.append("403")
        if "{" in path or has_input:
            statuses.append("404")
        if has_input:
            statuses += ["409", "422"]
        if has_body:
            statuses += ["413", "415"]
        if view.get_throttles() and any(_is_api_key_auth(a) for a in authenticators):
            statuses.append("429")
        return statuses

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if direction != "request":
            return schema
        if (
            isinstance(field, serializers.CharField)
            and schema.get("type") == "string"
            and "pattern" not in schema
            and "enum" not in schema
            and "format" not in schema
            # a field with its own regex: drf-spectacular publishes that one as the pattern
            and not any(isinstance(v, RegexValidator) for v in field.validators)
        ):
            blank_refused = not field.allow_blank and field.trim_whitespace
            schema["pattern"] = NOT_BLANK_PATTERN if blank_refused else NO_NUL_PATTERN
        if isinstance(field, serializers.ListField | serializers.ListSerializer):
            if not field.allow_empty:
                schema.setdefault("minItems", 1)
            if getattr(field, "max_length", None) is not None:
                schema.setdefault("maxItems", field.max_length)
        if (
            isinstance(field, serializers.JSONField)
            and not field.allow_null
            and not {"type", "$ref", "oneOf", "anyOf", "allOf"} & set(schema)
        ):
            schema.update(_NOT_NULL)
        return schema


def _empty_means_absent(parameter: dict) -> None:
    """DRF reads an optional query parameter given empty (`?period=`) as not given, as HTML
    forms send them; the schema says so, or a client would think `?period=` is refused."""
    schema = parameter.get("schema", {})
    if schema.get("type") == "array" or "anyOf" in schema:
        return
    parameter["schema"] = {"anyOf": [schema, {"type": "string", "enum": [""]}]}
    parameter["description"] = (
        parameter.get("description", "") + "\n\nEmpty: as if not given."
    ).strip()


_NOT_NULL = {
    "oneOf": [
        {"type": "object", "additionalProperties": True},
        {"type": "array", "items": {}},
        {"type": "string"},
        {"type": "number"},
        {"type": "boolean"},
    ]
}


def _is_api_key_auth(authenticator) -> bool:
    from core.auth import ApiKeyAuthentication

    return isinstance(authenticator, ApiKeyAuthentication)


def error_statuses_of(schema: dict) -> dict[str, set[str]]:
    """`{"GET /api/x/": {"400", ...}}`: the documented error statuses of every /api/ operation."""
    found = {}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            found[f"{method.upper()} {path}"] = {
                code for code in operation["responses"] if code[0] in "45"
            }
    return found
