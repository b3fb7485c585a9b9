"""`X-Api-Key` authentication for machine clients (the product's apps, the video pipeline)."""

import time
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.negotiation import BaseContentNegotiation

from core.models import ApiKey

HEADER = "HTTP_X_API_KEY"
_TOUCH_EVERY = timedelta(minutes=1)


class JsonOnlyNegotiation(BaseContentNegotiation):
    """Content negotiation for machine endpoints, which take and answer JSON only: the view's
    first parser and renderer, without parsing the Accept header on every call of a hot path."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ApiKeyAuthentication(BaseAuthentication):
    """Authenticates `X-Api-Key: <key>`; request.user and request.auth are the ApiKey.

    Machine endpoints are hot paths (events, assignment, registration), so each process looks a
    key up at most once per API_KEY_CACHE_SECONDS. A key revoked in another process is refused
    within that time; in the revoking process at once. Only key hashes are held, never keys.
    """

    _known: dict[str, tuple[float, ApiKey | None]] = {}

    def authenticate(self, request):
        raw = request.META.get(HEADER)
        if raw is None:
            return None
        digest = ApiKey.hash_key(raw.strip())
        now = time.monotonic()
        hit = self._known.get(digest)
        if hit is None or hit[0] <= now:
            if len(self._known) > 10_000:  # bounded against floods of random keys
                self._known.clear()
            key = ApiKey.objects.filter(key_hash=digest, is_active=True).first()
            hit = (now + settings.API_KEY_CACHE_SECONDS, key)
            self._known[digest] = hit
        key = hit[1]
        if key is None:
            raise AuthenticationFailed("X-Api-Key is not a valid, active key")
        wall = timezone.now()
        if key.last_used_at is None or wall - key.last_used_at > _TOUCH_EVERY:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=wall)
            key.last_used_at = wall
        return key, key

    def authenticate_header(self, request) -> str:
        return "Api-Key"

    @classmethod
    def forget(cls, key_hash: str | None = None) -> None:
        """Drop cached lookups (one key's, or all) in this process."""
        if key_hash is None:
            cls._known.clear()
        else:
            cls._known.pop(key_hash, None)


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
