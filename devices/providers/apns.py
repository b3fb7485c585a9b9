"""APNs provider API over HTTP/2 (httpx + h2) with token (JWT ES256) authentication.

aioapns is not used: it hard-codes Apple's hosts and always dials TLS, so it cannot be pointed
at a loopback server; and it would need its own event loop inside a Celery worker. httpx with
HTTP/2 speaks the same documented protocol (`POST /3/device/<token>`, `apns-topic`,
`authorization: bearer <jwt>`); an `http://` endpoint uses HTTP/2 with prior knowledge (tests).
"""

import json
import threading
import time

import httpx
import jwt
from django.conf import settings

from devices.providers import (
    Provider,
    ProviderNotConfigured,
    PushMessage,
    SendResult,
    post_and_classify,
)

GONE_REASONS = {"BadDeviceToken", "Unregistered", "DeviceTokenNotForTopic"}
# Apple refuses tokens older than an hour and too frequent refreshes; 50 minutes is the norm.
TOKEN_LIFETIME = 50 * 60


def _reason(body: str) -> str:
    try:
        return json.loads(body).get("reason", "")
    except (ValueError, AttributeError):
        return ""


def is_gone(status: int, body: str) -> bool:
    return status == 410 or _reason(body) in GONE_REASONS


class ApnsProvider(Provider):
    name = "apns"

    def __init__(self):
        if not (settings.APNS_KEY_FILE and settings.APNS_KEY_ID and settings.APNS_TEAM_ID):
            raise ProviderNotConfigured("APNS_KEY_FILE, APNS_KEY_ID and APNS_TEAM_ID must be set")
        with open(settings.APNS_KEY_FILE) as f:
            self._key = f.read()
        self._base = settings.APNS_ENDPOINT.rstrip("/")
        self._lock = threading.Lock()
        self._jwt, self._jwt_at = "", 0.0
        # One HTTP/2 connection multiplexes the fan-out's concurrent requests.
        self._client = httpx.Client(http1=False, http2=True, timeout=settings.PUSH_TIMEOUT)

    def _provider_token(self) -> str:
        with self._lock:
            if time.time() - self._jwt_at > TOKEN_LIFETIME:
                self._jwt_at = time.time()
                self._jwt = jwt.encode(
                    {"iss": settings.APNS_TEAM_ID, "iat": int(self._jwt_at)},
                    self._key,
                    algorithm="ES256",
                    headers={"kid": settings.APNS_KEY_ID},
                )
            return self._jwt

    def close(self) -> None:
        self._client.close()

    def send_one(self, device, message: PushMessage) -> SendResult:
        payload = {
            "aps": {"alert": {"title": message.title, "body": message.body}, "sound": "default"},
            "notification_id": message.notification_id,
            "type": message.type,
            "data": message.data,
        }
        headers = {
            "authorization": f"bearer {self._provider_token()}",
            "apns-topic": settings.APNS_TOPIC,
            "apns-push-type": "alert",
            "apns-priority": "10",
        }
        return post_and_classify(
            self._client,
            f"{self._base}/3/device/{device.token}",
            is_gone=is_gone,
            content=json.dumps(payload, default=str).encode(),
            headers=headers,
        )
