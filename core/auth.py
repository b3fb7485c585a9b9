"""`X-Api-Key` authentication for machine clients (the product's apps, the video pipeline)."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import BasePermission
from rest_framework.throttling import BaseThrottle

from core import api_keys

HEADER = "HTTP_X_API_KEY"


class JsonOnlyNegotiation(BaseContentNegotiation):
    """Content negotiation for machine endpoints, which take and answer JSON only: the view's
    first parser and renderer, without parsing the Accept header on every call of a hot path."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ApiKeyAuthentication(BaseAuthentication):
    """Authenticates `X-Api-Key: <key>`; request.user and request.auth are the ApiKey.

    The lookup (cached per process for API_KEY_CACHE_SECONDS; a key revoked in another process
    is refused within that time, in the revoking process at once) is core.api_keys.lookup.
    """

    def authenticate(self, request):
        raw = request.META.get(HEADER)
        if raw is None:
            return None
        key = api_keys.lookup(raw)
        if key is None:
            raise api_keys.InvalidApiKey("X-Api-Key is not a valid, active key")
        return key, key

    def authenticate_header(self, request) -> str:
        return "Api-Key"

    @classmethod
    def forget(cls, key_hash: str | None = None) -> None:
        """Drop cached lookups (one key's, or all) in this process."""
        api_keys.forget(key_hash)


class ApiKeyRateThrottle(BaseThrottle):
    """Per-key requests per second (ApiKey.rate_limit_per_second, else API_KEY_RATE_LIMIT);
    429 with Retry-After. On by default for every request authenticated by a key."""

    def allow_request(self, request, view) -> bool:
        from core.models import ApiKey

        if not isinstance(request.auth, ApiKey):
            return True
        self._wait = api_keys.rate_limit_wait(request.auth)
        return self._wait is None

    def wait(self) -> float:
        return self._wait or 1.0


def HasScope(scope: api_keys.Scope) -> type[BasePermission]:  # noqa: N802
    """DRF permission: an API key (X-Api-Key) holding `scope`; 403 JSON naming the scope
    otherwise (a publishable key on a secret-only endpoint, or a scope not granted)."""

    class _HasScope(BasePermission):
        message = f"this endpoint needs an X-Api-Key with the scope {scope.value}"

        def has_permission(self, request, view) -> bool:
            from core.models import ApiKey

            if not isinstance(request.auth, ApiKey):
                return False
            api_keys.require_scope(request.auth, scope)
            return True

    _HasScope.__name__ = f"HasScope_{scope.name}"
    return _HasScope


class ExpiringTokenAuthentication(TokenAuthentication):
    """Staff API tokens (`Authorization: Token <key>`, `manage.py drf_create_token`) stop
    working STAFF_TOKEN_DAYS after they were made; `drf_create_token -r <user>` makes a new one."""

    def authenticate_credentials(self, key):
        user, token = super().authenticate_credentials(key)
        if timezone.now() - token.created > timedelta(days=settings.STAFF_TOKEN_DAYS):
            raise AuthenticationFailed(
                f"the token expired ({settings.STAFF_TOKEN_DAYS} days); make a new one with "
                "manage.py drf_create_token -r <user>"
            )
        return user, token


class ApiKeyOnlyMixin:
    """For machine endpoints: only `X-Api-Key` authenticates, and a missing key answers 401."""

    authentication_classes = [ApiKeyAuthentication]


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """Documents `X-Api-Key` in the OpenAPI schema."""

    target_class = "core.auth.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "X-Api-Key"}


class AlertWebhookCaller:
    """Alertmanager, authenticated by the ALERT_WEBHOOK_TOKEN bearer token (no roles)."""

    is_authenticated = True
    is_anonymous = False
    username = "alertmanager"


class AlertWebhookAuthentication(BaseAuthentication):
    """`Authorization: Bearer <ALERT_WEBHOOK_TOKEN>`; with the setting unset every call fails."""

    def authenticate(self, request):
        import hmac

        from django.conf import settings

        token = settings.ALERT_WEBHOOK_TOKEN
        if not token:
            raise AuthenticationFailed("the alert webhook is off: ALERT_WEBHOOK_TOKEN is not set")
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            raise AuthenticationFailed("Authorization: Bearer <ALERT_WEBHOOK_TOKEN> is required")
        return AlertWebhookCaller(), token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="alerts"'


class AlertWebhookScheme(OpenApiAuthenticationExtension):
    target_class = "core.auth.AlertWebhookAuthentication"
    name = "AlertWebhookBearer"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "ALERT_WEBHOOK_TOKEN"}
