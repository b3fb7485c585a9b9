"""JSON error bodies `{"error": ..., "detail": ...}` for every API failure, 404 and 500 included."""

import logging

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.views.csrf import csrf_failure as html_csrf_failure
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

log = logging.getLogger(__name__)


class DomainError(Exception):
    """A request that conflicts with the current state of an object: answered with 409."""

    status_code = status.HTTP_409_CONFLICT
    code = "conflict"


class InvalidRequest(Exception):
    """A request a service refuses as invalid, with the field at fault: answered with 400."""

    status_code = status.HTTP_400_BAD_REQUEST
    code = "invalid"

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class Unprocessable(InvalidRequest):
    """The request matches the schema but breaks a rule the schema cannot state (a date range
    that ends before it starts, rollout steps that do not end at 100): answered with 422."""

    status_code = 422
    code = "unprocessable"


class MissingReference(InvalidRequest):
    """An id given in the body or query names no object (no cohort 7): answered with 404."""

    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"


class StateConflict(InvalidRequest):
    """A field names an object whose state does not allow this (a cohort not yet computed):
    answered with 409."""

    status_code = status.HTTP_409_CONFLICT
    code = "conflict"


# The codes to give a serializer's ValidationError for those answers.
UNPROCESSABLE = Unprocessable.code
NOT_FOUND = MissingReference.code
CONFLICT = StateConflict.code


def field_error(exc: InvalidRequest) -> exceptions.ValidationError:
    """`exc` inside a serializer's validation: the same problem, with its code, so that the
    answer keeps its status (core.errors.api_exception_handler) and pages show the message."""
    return exceptions.ValidationError({exc.field: [exc.problem]}, code=exc.code)


# Serializer errors with these codes answer with their own status when every problem of the
# request has it (a plain invalid value among them makes the answer 400).
_STATUS_OF_FIELD_CODE = {
    MissingReference.code: MissingReference.status_code,
    StateConflict.code: StateConflict.status_code,
    Unprocessable.code: Unprocessable.status_code,
}


def _leaf_codes(codes) -> set:
    if isinstance(codes, dict):
        return set().union(*(_leaf_codes(v) for v in codes.values())) if codes else set()
    if isinstance(codes, list):
        return set().union(*(_leaf_codes(v) for v in codes)) if codes else set()
    return {codes}


_CODES = {
    exceptions.ValidationError: "invalid",
    exceptions.ParseError: "malformed",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "not_authenticated",
    exceptions.PermissionDenied: "forbidden",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
    exceptions.NotAcceptable: "not_acceptable",
}


def error_body(error: str, detail) -> dict:
    return {"error": error, "detail": detail}


def api_exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, str(exc)), status=exc.status_code)
    if isinstance(exc, InvalidRequest):
        return Response(error_body(exc.code, {exc.field: [exc.problem]}), status=exc.status_code)
    if isinstance(exc, exceptions.ValidationError):
        codes = _leaf_codes(exc.get_codes())
        if codes and codes <= set(_STATUS_OF_FIELD_CODE):
            # several kinds at once: the first of not_found, conflict, unprocessable
            code = next(c for c in _STATUS_OF_FIELD_CODE if c in codes)
            return Response(error_body(code, exc.detail), status=_STATUS_OF_FIELD_CODE[code])
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "not found")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = exception_handler(exc, context)
    if response is None:
        return None  # a 500: Django's handler500 answers with JSON for API paths
    code = next((c for cls, c in _CODES.items() if isinstance(exc, cls)), "error")
    detail = response.data
    if isinstance(detail, dict) and set(detail) == {"detail"}:
        detail = detail["detail"]
    response.data = error_body(code, detail)
    return response


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def handler404(request, exception=None):
    if _is_api(request):
        return JsonResponse(
            error_body("not_found", f"no such resource: {request.path}"), status=404
        )
    from django.views.defaults import page_not_found

    return page_not_found(request, exception, template_name="404.html")


def handler500(request):
    if _is_api(request):
        return JsonResponse(
            error_body("server_error", "an unexpected error occurred; it was logged"), status=500
        )
    from django.views.defaults import server_error

    return server_error(request, template_name="500.html")


def handler403(request, exception=None):
    if _is_api(request):
        return JsonResponse(error_body("forbidden", str(exception) or "forbidden"), status=403)
    from django.views.defaults import permission_denied

    return permission_denied(request, exception, template_name="403.html")


def handler400(request, exception=None):
    if _is_api(request):
        return JsonResponse(error_body("bad_request", str(exception) or "bad request"), status=400)
    from django.views.defaults import bad_request

    return bad_request(request, exception, template_name="400.html")


@csrf_exempt
def api_not_found(request, *args, **kwargs):
    return JsonResponse(
        error_body("not_found", f"no such API endpoint: {request.path}"), status=404
    )


def csrf_failure(request, reason=""):
    """CSRF_FAILURE_VIEW: a session request under /api/ without its CSRF token answers a JSON
    403 like every other API error; pages keep Django's explanation page."""
    if _is_api(request):
        return JsonResponse(error_body("forbidden", f"CSRF failed: {reason}"), status=403)
    return html_csrf_failure(request, reason=reason)


class ApiErrorMiddleware:
    """Unexpected exceptions under /api/ answer with a JSON 500 (logged), never a trace page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not _is_api(request) or isinstance(exception, Http404 | PermissionDenied):
            return None
        log.exception("unhandled error on %s %s", request.method, request.path, exc_info=exception)
        return JsonResponse(
            error_body("server_error", "an unexpected error occurred; it was logged"), status=500
        )
