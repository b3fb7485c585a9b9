"""Web Push (RFC 8030) with VAPID (RFC 8292) and aes128gcm payloads (RFC 8291), via pywebpush."""

import threading
import time
from urllib.parse import urlsplit

import requests
from django.conf import settings
from pywebpush import WebPushException, webpush

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
        # One pooled session per fan-out: push services are few hosts with many endpoints.
        self._session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(
            pool_connections=8, pool_maxsize=settings.PUSH_CONCURRENCY
        )
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

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

    def close(self) -> None:
        self._session.close()

    def send_one(self, device, message: PushMessage) -> SendResult:
        try:
            response = webpush(
                subscription_info=device.subscription,
                data=message.payload_json(),
                headers=self._vapid_headers(device.endpoint),
                ttl=24 * 3600,
                timeout=settings.PUSH_TIMEOUT,
                requests_session=self._session,
            )
        except WebPushException as exc:
            response = exc.response
            if response is None:
                raise TransientError(str(exc)) from exc
        except requests.RequestException as exc:
            raise TransientError(str(exc)) from exc
        except ValueError as exc:  # malformed subscription keys: nothing will ever reach it
            return SendResult(Outcome.GONE, None, f"invalid subscription: {exc}")
        return classify_http(
            response.status_code,
            gone=response.status_code in (404, 410),
            retry_after=response.headers.get("Retry-After"),
            body=response.text,
        )
