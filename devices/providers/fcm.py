"""FCM HTTP v1 (`projects/<id>/messages:send`) over httpx with service-account OAuth2.

firebase-admin is not used: its messaging client hard-codes https://fcm.googleapis.com (no
endpoint setting), so neither tests nor a staging relay could point it elsewhere. This speaks
the same documented protocol: an OAuth2 access token minted from the service account
(google-auth, whose token exchange honours the account's `token_uri`), then one POST per
message; errors are read from `error.details[].errorCode`.
"""

import json
import threading

import httpx
from django.conf import settings
from google.auth.exceptions import RefreshError, TransportError
from google.auth.transport.requests import Request
from google.oauth2 import service_account

from devices.providers import (
    Outcome,
    Provider,
    ProviderNotConfigured,
    PushMessage,
    SendResult,
    TransientError,
    post_and_classify,
)

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GONE_CODES = {"UNREGISTERED"}


def _error_code(body: str) -> tuple[str, str]:
    try:
        error = json.loads(body).get("error", {})
    except (ValueError, AttributeError):
        return "", ""
    codes = [d.get("errorCode", "") for d in error.get("details", []) if isinstance(d, dict)]
    return (codes[0] if codes else error.get("status", "")), error.get("message", "")


def is_gone(status: int, body: str) -> bool:
    code, message = _error_code(body)
    if code in GONE_CODES:
        return True
    # INVALID_ARGUMENT covers bad payloads too; only a refused token means the device is gone.
    return code == "INVALID_ARGUMENT" and "registration token" in message.lower()


class FcmProvider(Provider):
    name = "fcm"

    def __init__(self):
        if not settings.FCM_SERVICE_ACCOUNT_FILE:
            raise ProviderNotConfigured("FCM_SERVICE_ACCOUNT_FILE is not set")
        with open(settings.FCM_SERVICE_ACCOUNT_FILE) as f:
            info = json.load(f)
        self._credentials = service_account.Credentials.from_service_account_info(
            info, scopes=[SCOPE]
        )
        project = settings.FCM_PROJECT_ID or info.get("project_id", "")
        self._url = f"{settings.FCM_ENDPOINT.rstrip('/')}/v1/projects/{project}/messages:send"
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=settings.PUSH_TIMEOUT)

    def _access_token(self) -> str:
        with self._lock:
            if not self._credentials.valid:
                try:
                    self._credentials.refresh(Request())
                except TransportError as exc:
                    raise TransientError(f"token exchange: {exc}") from exc
            return self._credentials.token

    def close(self) -> None:
        self._client.close()

    def send_one(self, device, message: PushMessage) -> SendResult:
        body = {
            "message": {
                "token": device.token,
                "notification": {"title": message.title, "body": message.body},
                # FCM data values must be strings.
                "data": {
                    "notification_id": str(message.notification_id),
                    "type": message.type,
                    "data": json.dumps(message.data, default=str),
                },
            }
        }
        try:
            headers = {"Authorization": f"Bearer {self._access_token()}"}
        except RefreshError as exc:  # our service account was refused: no device is at fault
            return SendResult(Outcome.FAILED, None, f"OAuth2 token refused: {exc}"[:1000])
        return post_and_classify(
            self._client, self._url, is_gone=is_gone, json=body, headers=headers
        )
