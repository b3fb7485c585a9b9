"""Web Push (RFC 8030) with VAPID (RFC 8292) and aes128gcm payloads (RFC 8291).

pywebpush encrypts; the request goes through the outbound guard (core/outbound.py), because
the endpoint is a URL the client chose: https on a push service of WEBPUSH_ALLOWED_HOSTS, every
resolved address global and the connection pinned to it, no redirects, and only the status and
a short sanitized reason kept (never the body of whatever answered)."""

import threading
import time
from urllib.parse import urlsplit

from django.conf import settings
from pywebpush import WebPusher

from core import outbound
from devices.providers import (
    Outcome,
    Provider,
    PushMessage,
    SendResult,
    TransientError,
    classify_http,
)
from devices.vapid import vapid

VAPID_LIFETIME = 12 * 3600  # RFC 8292 allows at most 24 hours
VAPID_REFRESH_MARGIN = 3600


class WebPushProvider(Provider):
    name = "webpush"

    def __init__(self):
        self._vapid = vapid()
        self._lock = threading.Lock()
        self._headers: dict[str, tuple[int, dict]] = {}

    def _vapid_headers(self, endpoint: str) -> dict:
        """The VAPID Authorization header for the endpoint's push service. A JWT is valid for
        its audience (the service's origin) until exp, so one signature serves every endpoint
        of that service for the whole fan-out instead of one ECDSA signature per message."""
        parts = urlsplit(endpoint)
        origin = f"{parts.scheme}://{parts.netloc}"
        with self._lock:
            cached = self._headers.get(origin)
            if cached is None or cached[0] < time.time() + VAPID_REFRESH_MARGIN:
                exp = int(time.time()) + VAPID_LIFETIME
                claims = {"sub": settings.VAPID_SUBJECT, "aud": origin, "exp": exp}
                cached = (exp, self._vapid.sign(claims))
                self._headers[origin] = cached
            return dict(cached[1])

    def send_one(self, device, message: PushMessage) -> SendResult:
        try:
            body = WebPusher(device.subscription).encode(
                message.payload_json().encode(), "aes128gcm"
            )["body"]
        except (ValueError, TypeError) as exc:  # malformed keys: nothing will ever reach it
            return SendResult(Outcome.GONE, None, f"invalid subscription: {exc}")
        headers = {
            **self._vapid_headers(device.endpoint),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(24 * 3600),
        }
        try:
            response = outbound.post(
                device.endpoint,
                content=body,
                headers=headers,
                timeout=settings.PUSH_TIMEOUT,
                allowed_hosts=settings.WEBPUSH_ALLOWED_HOSTS,
                max_body=1024,
            )
        except outbound.OutboundRefused as exc:
            # The endpoint itself is not allowed (a private address, a host off the list):
            # no retry can help, and the device keeps its other chances (staff see why).
            return SendResult(Outcome.FAILED, None, f"refused: {exc}")
        except outbound.OutboundError as exc:
            raise TransientError(str(exc)) from exc
        return classify_http(
            response.status,
            gone=response.status in (404, 410),
            retry_after=response.headers.get("retry-after"),
            body=response.reason,
        )
