"""Web Push (RFC 8030) with VAPID (RFC 8292) and aes128gcm payloads (RFC 8291), via pywebpush."""

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


class WebPushProvider(Provider):
    name = "webpush"

    def __init__(self):
        self._vapid = vapid()
        # One pooled session per fan-out: push services are few hosts with many endpoints.
        self._session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(
            pool_connections=8, pool_maxsize=settings.PUSH_CONCURRENCY
        )
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def close(self) -> None:
        self._session.close()

    def send_one(self, device, message: PushMessage) -> SendResult:
        try:
            response = webpush(
                subscription_info=device.subscription,
                data=message.payload_json(),
                vapid_private_key=self._vapid,
                # A fresh dict each call: pywebpush fills in aud (the endpoint's origin) and exp.
                vapid_claims={"sub": settings.VAPID_SUBJECT},
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
