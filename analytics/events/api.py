"""Event capture and reads at `/api/events/`: apps POST events (X-Api-Key), staff GET them.

POST is the hot path: the body is read, decompressed and decoded by hand (msgspec), never by
DRF's parsers or serializers, which would cost more than the whole capture. The serializers
below only describe the API in the OpenAPI schema and validate GET's query parameters.
"""

from __future__ import annotations

import datetime as dt
import zlib

import msgspec
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied, Throttled
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.events.enrich import served_by
from analytics.events.posthog import WireProblem, json_bytes, sent_at_from_query, wire_events
from analytics.events.schema import EVENT_NAME_PATTERN, MAX_BATCH, decode_valid_body
from analytics.events.selectors import EventFilter, events_latest
from analytics.events.services import BufferUnavailable, events_capture
from core.api_keys import Scope, authenticate_publishable
from core.auth import (
    ApiKeyAuthentication,
    ApiKeyRateThrottle,
    ExpiringTokenAuthentication,
    HasScope,
    JsonOnlyNegotiation,
)
from core.errors import UNPROCESSABLE, error_body
from core.roles import IsStaffRole

MAX_BODY_BYTES = 5 * 1024 * 1024
_decode_json = msgspec.json.Decoder().decode


class _BodyProblem(Exception):
    def __init__(self, status_code: int, code: str, field: str, problem: str):
        self.status_code, self.code, self.field, self.problem = status_code, code, field, problem

    def response(self) -> Response:
        return Response(
            error_body(self.code, {self.field: [self.problem]}), status=self.status_code
        )


def _too_large() -> _BodyProblem:
    return _BodyProblem(413, "too_large", "body", f"larger than {MAX_BODY_BYTES} bytes")


def read_body(request) -> bytes:
    """The raw body, gunzipped if sent so, refusing more than 5 MB before or after inflating."""
    meta = request.META
    try:
        declared = int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_BODY_BYTES:
        raise _too_large()
    # request.body would stop at DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB); read the stream instead.
    raw = request._request.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise _too_large()
    encoding = meta.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            raw = inflater.decompress(raw, MAX_BODY_BYTES + 1)
        except zlib.error:
            raise _BodyProblem(400, "malformed", "body", "not valid gzip") from None
        if len(raw) > MAX_BODY_BYTES or inflater.unconsumed_tail:
            raise _too_large()
    elif encoding not in ("", "identity"):
        raise _BodyProblem(415, "unsupported_media_type", "Content-Encoding", "use gzip or none")
    return raw


def served_by_header(request) -> str:
    """The serving version the mesh set on the capture request (X-Served-By), '' if none."""
    try:
        return served_by(request.META.get("HTTP_X_SERVED_BY"))
    except ValueError as exc:
        raise _BodyProblem(400, "invalid", "X-Served-By", str(exc)) from None


def events_from_body(raw: bytes) -> list:
    try:
        body = _decode_json(raw)
    except msgspec.DecodeError:
        raise _BodyProblem(400, "malformed", "body", "not valid JSON") from None
    if not isinstance(body, dict):
        raise _BodyProblem(400, "invalid", "body", 'expected an event object or {"batch": [...]}')
    if "batch" not in body:
        return [body]
    batch = body["batch"]
    if set(body) != {"batch"}:
        extra = sorted(set(body) - {"batch"})[0]
        raise _BodyProblem(400, "invalid", extra, "unknown field next to batch")
    if not isinstance(batch, list):
        raise _BodyProblem(400, "invalid", "batch", "expected a list of events")
    if not batch:
        raise _BodyProblem(400, "invalid", "batch", "empty")
    if len(batch) > MAX_BATCH:
        raise _BodyProblem(400, "invalid", "batch", f"at most {MAX_BATCH} events")
    return batch


def _text(**kwargs) -> serializers.CharField:
    # As capture takes them (analytics/events/schema.py): kept as sent, blank allowed.
    return serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, **kwargs)


class EventInSerializer(serializers.Serializer):
    """One event (documentation only; capture validates with msgspec: the same rules)."""

    schema_extra = {"additionalProperties": False}  # capture refuses unknown fields

    uuid = serializers.UUIDField(
        required=False, allow_null=True, help_text="generated (UUIDv7) when absent"
    )
    event = serializers.RegexField(EVENT_NAME_PATTERN)
    user_id = serializers.CharField(min_length=1, max_length=200, trim_whitespace=False)
    timestamp = serializers.DateTimeField(
        required=False,
        allow_null=True,
        help_text="ISO 8601 with offset, from 2000-01-01 to 1 hour ahead; default: receipt time",
    )
    properties = serializers.DictField(
        required=False,
        help_text="at most 32 KB serialized. Person properties as PostHog's: `$set` / "
        "`$set_once` objects whose `tier`, `country`, `signup_source` and `signup_at` / "
        "`signup_date` (ISO 8601) update the user (`$set` overwrites, `$set_once` fills what "
        "is empty); event `$identify` with `$anon_distinct_id`, or `$create_alias` with "
        "`alias`, links that other id to this user, whose analyses then count its events",
    )
    session_id = _text(max_length=200)
    page_url = _text(max_length=2048)
    user_agent = _text(max_length=1024)
    ip = _text(max_length=64)


class EventBatchSerializer(serializers.Serializer):
    schema_extra = {"additionalProperties": False}

    batch = EventInSerializer(many=True, max_length=MAX_BATCH, allow_empty=False)


class CaptureOutputSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    rejected = inline_serializer(
        "RejectedEvent",
        {"index": serializers.IntegerField(), "error": serializers.CharField()},
        many=True,
    )


class EventOutSerializer(serializers.Serializer):
    uuid = serializers.UUIDField()
    event = serializers.CharField()
    user_id = serializers.CharField()
    timestamp = serializers.DateTimeField()
    properties = serializers.DictField()
    session_id = serializers.CharField()
    page_url = serializers.CharField()
    user_agent = serializers.CharField()
    ip = serializers.CharField()
    received_at = serializers.DateTimeField()


class EventListInputSerializer(serializers.Serializer):
    event = serializers.RegexField(EVENT_NAME_PATTERN, required=False)
    user_id = serializers.CharField(required=False, max_length=200)
    date_from = serializers.DateTimeField(required=False)
    date_to = serializers.DateTimeField(required=False)
    limit = serializers.IntegerField(required=False, min_value=0, max_value=1000, default=100)

    def validate(self, attrs):
        lo, hi = attrs.get("date_from"), attrs.get("date_to")
        if lo and hi and lo >= hi:
            raise serializers.ValidationError(
                {"date_to": ["must be after date_from"]}, code=UNPROCESSABLE
            )
        return attrs


class EventListOutputSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="all matching events, each uuid once")
    results = EventOutSerializer(many=True, help_text="newest first, at most `limit`")


class EventsApi(APIView):
    """POST: capture (X-Api-Key, rate-limited per key). GET: the latest events (staff)."""

    pagination_class = None

    def initialize_request(self, request, *args, **kwargs):
        self._capture = request.method == "POST"
        return super().initialize_request(request, *args, **kwargs)

    def get_authenticators(self):
        if getattr(self, "_capture", False):
            return [ApiKeyAuthentication()]
        return [ExpiringTokenAuthentication(), SessionAuthentication()]

    def get_permissions(self):
        return (
            [HasScope(Scope.EVENTS_CAPTURE)()]
            if getattr(self, "_capture", False)
            else [IsStaffRole()]
        )

    def get_throttles(self):
        return [ApiKeyRateThrottle()] if getattr(self, "_capture", False) else []

    @extend_schema(
        operation_id="events_capture",
        summary="Capture one event or a batch of up to 1,000",
        request={"application/json": EventBatchSerializer},
        responses={
            202: CaptureOutputSerializer,
            400: OpenApiResponse(
                description="not JSON, bad batch shape, a malformed X-Served-By, or no valid event"
            ),
            401: OpenApiResponse(description="no valid X-Api-Key"),
            413: OpenApiResponse(description="body over 5 MB (compressed or not)"),
            429: OpenApiResponse(description="rate limit of the key; see Retry-After"),
            503: OpenApiResponse(description="the event buffer is unavailable; retry"),
        },
        auth=[{"ApiKeyAuth": []}],
        description=(
            'Body: one event object or `{"batch": [...]}`; `Content-Encoding: gzip` accepted. '
            "Valid events of a partly bad batch are kept; each rejected one is named by index "
            "and `<field>: <problem>`. Accepted events are durable (Redis) before the 202 and "
            "visible to queries within about a second. The version that served the events "
            "is their `release` property, else `$app_version`; a mesh in front of the "
            "service may instead set `X-Served-By: <service>:<tag>` on the request, which is "
            "written as `release` into events that carry none."
        ),
        parameters=[
            OpenApiParameter(
                "X-Served-By",
                {"type": "string", "pattern": "^[A-Za-z0-9_.:@/+-]{0,200}$"},
                OpenApiParameter.HEADER,
                required=False,
                description="the version that served the request, e.g. video-renderer:v7 "
                "(letters, digits, _ . : @ / + -; at most 200)",
            )
        ],
    )
    def post(self, request):
        try:
            release = served_by_header(request)
            raw = read_body(request)
            events = decode_valid_body(raw) or events_from_body(raw)
        except _BodyProblem as problem:
            return problem.response()
        try:
            result = events_capture(
                events=events,
                api_key=request.auth,
                ip=request.META.get("REMOTE_ADDR"),
                user_agent=request.META.get("HTTP_USER_AGENT", ""),
                served_by=release,
            )
        except BufferUnavailable as exc:
            return Response(
                error_body("unavailable", str(exc)), status=503, headers={"Retry-After": "5"}
            )
        body = result.as_dict()
        if not result.accepted:
            return Response(
                {**error_body("invalid", "no valid event in the body"), **body},
                status=status.HTTP_400_BAD_REQUEST,
            )
        return Response(body, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        operation_id="events_list",
        summary="The latest events, filtered",
        parameters=[EventListInputSerializer],
        responses={200: EventListOutputSerializer},
    )
    def get(self, request):
        params = EventListInputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        limit = data.pop("limit")
        page = events_latest(filters=EventFilter(**data), limit=limit)
        return Response(
            EventListOutputSerializer({"count": page.count, "results": page.results}).data
        )


# --- PostHog SDK wire endpoints --------------------------------------------------------------

_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Content-Encoding",
    "Access-Control-Max-Age": "86400",
}


def capture_key(request, token: str):
    """The active publishable key a PostHog SDK sent as its project token, counted against its
    rate (core.api_keys.authenticate_publishable)."""
    key = authenticate_publishable(token, scope=Scope.EVENTS_CAPTURE)
    request.auth = key
    return key


def _wire_error(status_code: int, code: str, field: str, problem: str) -> Response:
    return Response(error_body(code, {field: [problem]}), status=status_code, headers=_CORS)


@extend_schema(exclude=True)  # an SDK wire endpoint (README, SDKs), not the public API
class PosthogCaptureApi(APIView):
    """`POST /batch/`, `/capture/`, `/e/`, `/i/v0/e/`, `/track/`: PostHog SDKs' capture.

    The project token (a publishable key) comes in the body (`api_key`, `token`,
    `properties.token`) or the query (`token`, `api_key`). The events go through the same
    validation, buffer and partial-batch answers as `POST /api/events/`. Answers tell an SDK
    what to do: 200 (kept; rejected events named), 4xx (drop: retrying cannot help), 429 and
    503 (retry later; PostHog SDKs retry these with backoff)."""

    authentication_classes: list = []
    permission_classes: list = []
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JsonOnlyNegotiation

    def options(self, request, *args, **kwargs):
        return Response(status=204, headers=_CORS)

    def post(self, request):
        query = request.query_params
        try:
            release = served_by_header(request)
            raw = read_body(request)
            data = json_bytes(
                raw,
                compression=(query.get("compression") or "").lower(),
                content_type=request.META.get("CONTENT_TYPE", ""),
                limit=MAX_BODY_BYTES,
            )
            now = dt.datetime.now(dt.UTC)
            wire = wire_events(data, now=now, sent_at=sent_at_from_query(query.get("_")))
        except _BodyProblem as problem:
            return _wire_error(problem.status_code, problem.code, problem.field, problem.problem)
        except WireProblem as problem:
            code = {413: "too_large", 415: "unsupported_media_type"}.get(problem.status, "invalid")
            return _wire_error(problem.status, code, problem.field, problem.problem)
        token = wire.token or query.get("token") or query.get("api_key")
        if not token:
            return _wire_error(401, "not_authenticated", "api_key", "no project token sent")
        try:
            key = capture_key(request, token)
        except AuthenticationFailed as exc:
            return _wire_error(401, "not_authenticated", "api_key", str(exc.detail))
        except PermissionDenied as exc:
            return _wire_error(403, "forbidden", "api_key", str(exc.detail))
        except Throttled as exc:
            response = _wire_error(429, "rate_limited", "api_key", str(exc.detail))
            response["Retry-After"] = str(exc.wait or 1)
            return response
        try:
            result = events_capture(
                events=wire.events,
                api_key=key,
                ip=request.META.get("REMOTE_ADDR"),
                user_agent=request.META.get("HTTP_USER_AGENT", ""),
                served_by=release,
            )
        except BufferUnavailable as exc:
            return Response(
                error_body("unavailable", str(exc)),
                status=503,
                headers={"Retry-After": "5", **_CORS},
            )
        body = result.as_dict()
        if not result.accepted:
            return Response(
                {**error_body("invalid", "no valid event in the body"), **body},
                status=status.HTTP_400_BAD_REQUEST,
                headers=_CORS,
            )
        return Response({"status": 1, **body}, headers=_CORS)


# What PostHog SDKs read at start-up: no feature flags, no session recording, no site apps,
# gzip-js accepted. The SDKs run with their defaults (README, SDKs).
DECIDE_ANSWER = {
    "config": {"enable_collect_everything": True},
    "editorParams": {},
    "featureFlags": {},
    "featureFlagPayloads": {},
    "flags": {},
    "errorsWhileComputingFlags": False,
    "quotaLimited": [],
    "sessionRecording": False,
    "capturePerformance": False,
    "autocapture_opt_out": False,
    "autocaptureExceptions": False,
    "heatmaps": False,
    "surveys": False,
    "siteApps": [],
    "toolbarParams": {},
    "supportedCompression": ["gzip", "gzip-js"],
}


@extend_schema(exclude=True)  # an SDK wire endpoint (README, SDKs), not the public API
class PosthogDecideApi(APIView):
    """`GET|POST /decide/` and `/flags/`: PostHog SDKs' configuration and flags call."""

    authentication_classes: list = []
    permission_classes: list = []
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JsonOnlyNegotiation

    def options(self, request, *args, **kwargs):
        return Response(status=204, headers=_CORS)

    def get(self, request):
        return Response(DECIDE_ANSWER, headers=_CORS)

    def post(self, request):
        return Response(DECIDE_ANSWER, headers=_CORS)


# posthog-js's remote configuration (`/array/<token>/config`): the same defaults.
REMOTE_CONFIG = {
    "supportedCompression": ["gzip", "gzip-js"],
    "hasFeatureFlags": False,
    "sessionRecording": False,
    "capturePerformance": False,
    "autocapture_opt_out": False,
    "autocaptureExceptions": False,
    "heatmaps": False,
    "surveys": False,
    "siteApps": [],
}


@extend_schema(exclude=True)  # an SDK wire endpoint (README, SDKs), not the public API
class PosthogRemoteConfigApi(APIView):
    """`GET /array/<token>/config`: posthog-js's start-up configuration."""

    authentication_classes: list = []
    permission_classes: list = []
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JsonOnlyNegotiation

    def options(self, request, *args, **kwargs):
        return Response(status=204, headers=_CORS)

    def get(self, request, token: str):
        return Response({"token": token, **REMOTE_CONFIG}, headers=_CORS)
