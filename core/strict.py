"""Strict JSON types: a JSON body's values must have the type the schema gives them.

DRF's fields coerce: a CharField takes the number 12 as "12", an IntegerField takes "12", a
BooleanField takes "yes" and 1, a ChoiceField takes 1 for the choice "1", a UUIDField takes an
integer. The OpenAPI schema says `type: string` (or integer, boolean, ...), so a client that
generates its code from it never sends those; a server that takes them anyway accepts
requests its contract calls invalid. Here every value of a JSON body is held to its field's
type (400 naming the field); query strings and HTML forms, where everything is text, keep
DRF's conversions.

`StrictJSONParser` (REST_FRAMEWORK's only default parser) marks the objects and arrays it
parses; `install()` (called once by the core app) makes DRF's typed fields refuse a value of
the wrong JSON type when the data they validate is so marked. Serializers fed anything else
(query parameters, form posts, a dict a page builds) behave as DRF always did.
"""

import json

from django.conf import settings
from django.core.validators import RegexValidator
from rest_framework import fields, serializers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class JsonObject(dict):
    """A JSON object of a request body (marks data the strict field types apply to)."""


class JsonArray(list):
    """A JSON array at the top of a request body."""


class StrictJSONParser(JSONParser):
    """application/json; every object (at any depth) is a JsonObject, a top-level array a
    JsonArray. Refuses NaN and Infinity, which are not JSON."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = stream.read().decode(encoding) if stream is not None else ""
            data = json.loads(text, object_pairs_hook=JsonObject, parse_constant=_refuse_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        return JsonArray(data) if type(data) is list else data


class FullMatch(RegexValidator):
    """A RegexValidator the whole value must match (Python's `$` also matches before a final
    newline; JSON Schema's does not). drf-spectacular publishes its regex as the `pattern`."""

    def __call__(self, value):
        if not self.regex.fullmatch(str(value)):
            raise serializers.ValidationError(self.message, code=self.code)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON value")


def is_json_body(field: fields.Field) -> bool:
    """Whether `field` validates data that came from a JSON body."""
    root = field
    while root.parent is not None:
        root = root.parent
    return isinstance(getattr(root, "initial_data", None), JsonObject | JsonArray)


def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_string(value) -> bool:
    return isinstance(value, str)


def _is_boolean(value) -> bool:
    return isinstance(value, bool)


def _choice_accepts(field: serializers.ChoiceField, value) -> bool:
    keys = list(field.choices)
    if keys and all(isinstance(key, str) for key in keys):
        return isinstance(value, str)
    if keys and all(isinstance(key, int) and not isinstance(key, bool) for key in keys):
        return isinstance(value, int) and not isinstance(value, bool)
    return True


def _decimal_accepts(field: serializers.DecimalField, value) -> bool:
    # The schema gives a decimal as a string when DRF renders it as one, else as a number.
    coerce = field.coerce_to_string
    if coerce is None:
        coerce = serializers.api_settings.COERCE_DECIMAL_TO_STRING
    return isinstance(value, str) if coerce else _is_number(value)


# (field class, accepts(field, value), the JSON type named in the error)
_RULES = [
    (serializers.BooleanField, lambda f, v: _is_boolean(v), "boolean"),
    (serializers.CharField, lambda f, v: _is_string(v), "string"),
    (serializers.IntegerField, lambda f, v: _is_number(v), "integer"),
    (serializers.FloatField, lambda f, v: _is_number(v), "number"),
    (serializers.DecimalField, _decimal_accepts, "decimal"),
    (serializers.ChoiceField, _choice_accepts, "one of the choices"),
    (serializers.DateTimeField, lambda f, v: _is_string(v), "string (date-time)"),
    (serializers.DateField, lambda f, v: _is_string(v), "string (date)"),
    (serializers.TimeField, lambda f, v: _is_string(v), "string (time)"),
    (serializers.DurationField, lambda f, v: _is_string(v), "string (duration)"),
    (serializers.UUIDField, lambda f, v: _is_string(v), "string (uuid)"),
]


def _strict(original, accepts, expected: str):
    def to_internal_value(self, data):
        if is_json_body(self):
            if not accepts(self, data):
                raise serializers.ValidationError(
                    f"Expected a {expected}, got a JSON {_json_type(data)}.", code="invalid"
                )
            # The schema's maxLength counts the string as sent, before DRF trims it.
            limit = getattr(self, "max_length", None)
            if isinstance(self, serializers.CharField) and limit is not None and len(data) > limit:
                self.fail("max_length", max_length=limit)
        return original(self, data)

    to_internal_value.__strict__ = True
    return to_internal_value


def install() -> None:
    """Hold DRF's typed fields to their JSON types for JSON bodies (idempotent)."""
    for cls, accepts, expected in _RULES:
        original = cls.__dict__["to_internal_value"]
        if getattr(original, "__strict__", False):
            continue
        cls.to_internal_value = _strict(original, accepts, expected)
