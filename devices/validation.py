"""Checks of what the apps send when they register: tokens, Web Push subscriptions, zones."""

import base64
import binascii
import ipaddress
import re
import zoneinfo
from urllib.parse import urlsplit

from django.conf import settings

from core import outbound
from core.errors import Unprocessable

# Every problem found here is in a body the schema calls valid (a token of the wrong form for
# its platform, an endpoint off the push services, a zone that does not exist): 422.
InvalidRequest = Unprocessable

# APNs device tokens are hex (32 bytes today, Apple allows longer); FCM registration tokens
# are URL-safe text with a colon, about 150-250 characters.
APNS_TOKEN = re.compile(r"^[0-9a-fA-F]{64,200}$")
FCM_TOKEN = re.compile(r"^[A-Za-z0-9_\-:]{20,512}$")
LOCALE = re.compile(r"^[a-zA-Z]{2,3}([_-][a-zA-Z0-9]{2,8})*$")
LOOPBACK_NAMES = {"localhost"}


def check_token(platform: str, token: str) -> str:
    pattern = APNS_TOKEN if platform == "ios" else FCM_TOKEN
    if not pattern.match(token):
        kind = "an APNs token (64+ hex digits)" if platform == "ios" else "an FCM token"
        raise InvalidRequest("token", f"is not {kind}")
    return token


def _b64url(value: str, field: str, size: int) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest(field, "is not base64url") from exc
    if len(raw) != size:
        raise InvalidRequest(field, f"must decode to {size} bytes, not {len(raw)}")
    return raw


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_endpoint(endpoint: str) -> str:
    """An https URL on a push service of WEBPUSH_ALLOWED_HOSTS (core/outbound.py checks it again,
    with the addresses the name resolves to, at every send)."""
    try:
        parts = urlsplit(endpoint)
        host = parts.hostname
    except ValueError:
        host = None
    if not host:
        raise InvalidRequest("subscription.endpoint", "is not an absolute URL")
    if parts.scheme == "https":
        try:
            outbound.check_url(endpoint, allowed_hosts=settings.WEBPUSH_ALLOWED_HOSTS)
        except outbound.OutboundRefused as exc:
            raise InvalidRequest("subscription.endpoint", str(exc)) from None
        return endpoint
    if parts.scheme == "http" and is_loopback(parts.hostname):
        if settings.WEBPUSH_ALLOW_HTTP_LOOPBACK:
            return endpoint
        raise InvalidRequest(
            "subscription.endpoint",
            "plain http is accepted only when WEBPUSH_ALLOW_HTTP_LOOPBACK is on",
        )
    raise InvalidRequest("subscription.endpoint", "must be an https URL")


def check_subscription(subscription: dict) -> tuple[str, str, str]:
    """(endpoint, p256dh, auth) of a PushSubscription.toJSON() body."""
    endpoint = check_endpoint(subscription["endpoint"])
    keys = subscription["keys"]
    p256dh = _b64url(keys["p256dh"], "subscription.keys.p256dh", 65)
    if p256dh[0] != 4:
        raise InvalidRequest("subscription.keys.p256dh", "is not an uncompressed P-256 point")
    _b64url(keys["auth"], "subscription.keys.auth", 16)
    return endpoint, keys["p256dh"], keys["auth"]


def check_timezone(name: str) -> str:
    if not name:
        return "UTC"
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidRequest("timezone", f"{name!r} is not an IANA time zone") from exc
    return name


def check_locale(locale: str) -> str:
    if not locale:
        return "en"
    if not LOCALE.match(locale):
        raise InvalidRequest("locale", f"{locale!r} is not a locale such as en or pt-BR")
    return locale.replace("_", "-")
