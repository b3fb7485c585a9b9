"""`X-Api-Key` authentication for machine clients (the product's apps, the video pipeline)."""

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed

from platform_site.models import ApiKey

HEADER = "HTTP_X_API_KEY"
_TOUCH_EVERY = timedelta(minutes=1)


def api_key_from_raw(raw: str) -> ApiKey | None:
    if not raw:
        return None
    return ApiKey.objects.filter(key_hash=ApiKey.hash_key(raw), is_active=True).first()


class ApiKeyAuthentication(BaseAuthentication):
    """Authenticates `X-Api-Key: <key>`; request.user and request.auth are the ApiKey."""

    def authenticate(self, request):
        raw = request.META.get(HEADER)
        if raw is None:
            return None
        key = api_key_from_raw(raw.strip())
        if key is None:
            raise AuthenticationFailed("X-Api-Key is not a valid, active key")
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at > _TOUCH_EVERY:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
            key.last_used_at = now
        return key, key

    def authenticate_header(self, request) -> str:
        return "Api-Key"


class ApiKeyOnlyMixin:
    """For machine endpoints: only `X-Api-Key` authenticates, and a missing key answers 401."""

    authentication_classes = [ApiKeyAuthentication]


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """Documents `X-Api-Key` in the OpenAPI schema."""

    target_class = "platform_site.auth.ApiKeyAuthentication"
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
    target_class = "platform_site.auth.AlertWebhookAuthentication"
    name = "AlertWebhookBearer"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "ALERT_WEBHOOK_TOKEN"}
