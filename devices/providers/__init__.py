"""Push providers: what a delivery is sent through, and how each answer is classified.

`PUSH_BACKEND=outbox` (the default) records every delivery and sends nothing; `live` sends
Web Push (web), FCM (android) and APNs (ios). Every provider answers each message with a
`SendResult` whose outcome decides the delivery's status: sent, retry later, device gone
(deactivate it) or failed for good.
"""

from __future__ import annotations

import email.utils
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from django.conf import settings


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"  # transient: 5xx, 429, timeout, connection error
    GONE = "gone"  # permanent for this device: deactivate it
    FAILED = "failed"  # permanent for this message (bad payload, our credentials)


@dataclass(frozen=True)
class PushMessage:
    notification_id: int
    type: str
    title: str
    body: str
    data: dict = field(default_factory=dict)

    def payload(self) -> dict:
        return {
            "notification_id": self.notification_id,
            "type": self.type,
            "title": self.title,
            "body": self.body,
            "data": self.data,
        }

    def payload_json(self) -> str:
        return json.dumps(self.payload(), separators=(",", ":"), default=str)


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    status_code: int | None = None
    response: str = ""
    retry_after: float | None = None  # seconds, from the provider's Retry-After


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def classify_http(status: int, *, gone: bool, retry_after: str | None, body: str) -> SendResult:
    """The common part of every provider's answer: 2xx sent, 429/5xx retry, else failed
    unless the provider-specific check said the device is gone."""
    text = body[:1000]
    if 200 <= status < 300:
        return SendResult(Outcome.SENT, status, text)
    if gone:
        return SendResult(Outcome.GONE, status, text)
    if status == 429 or status >= 500:
        return SendResult(Outcome.RETRY, status, text, parse_retry_after(retry_after))
    return SendResult(Outcome.FAILED, status, text)


def post_and_classify(client, url: str, *, is_gone, **request) -> SendResult:
    """POST with an httpx client and classify the answer; `is_gone(status, body)` is the
    provider's own test for a dead device. Network failures are transient."""
    import httpx

    try:
        response = client.post(url, **request)
    except httpx.TransportError as exc:
        raise TransientError(str(exc)) from exc
    return classify_http(
        response.status_code,
        gone=is_gone(response.status_code, response.text),
        retry_after=response.headers.get("Retry-After"),
        body=response.text,
    )


class Provider:
    """Sends messages to devices of one platform. Subclasses implement `send_one`; the default
    `send_many` runs them on a bounded thread pool (providers are network-bound)."""

    name = "provider"

    def send_one(self, device, message: PushMessage) -> SendResult:
        raise NotImplementedError

    def send_many(self, items: list[tuple]) -> list[SendResult]:
        if len(items) <= 1:
            return [self._safe_send(d, m) for d, m in items]
        workers = min(settings.PUSH_CONCURRENCY, len(items))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(lambda item: self._safe_send(*item), items))

    def close(self) -> None:
        """Release the provider's connections (one provider serves one batch)."""

    def _safe_send(self, device, message: PushMessage) -> SendResult:
        try:
            return self.send_one(device, message)
        except TransientError as exc:
            return SendResult(Outcome.RETRY, None, f"{type(exc).__name__}: {exc}"[:1000])


class TransientError(Exception):
    """A network failure (timeout, refused connection): the delivery is retried."""


class ProviderNotConfigured(Exception):
    """Live sending was asked for but the provider's credentials are not set."""


def provider_for(platform: str, backend: str | None = None) -> Provider:
    """A provider for devices of `platform` under the configured backend. One instance serves
    one fan-out (it holds that fan-out's HTTP connections); settings are read when it is made."""
    backend = backend or settings.PUSH_BACKEND
    if backend == "outbox":
        from devices.providers.outbox import OutboxProvider

        return OutboxProvider()
    if platform == "web":
        from devices.providers.webpush import WebPushProvider

        return WebPushProvider()
    if platform == "android":
        from devices.providers.fcm import FcmProvider

        return FcmProvider()
    from devices.providers.apns import ApnsProvider

    return ApnsProvider()
