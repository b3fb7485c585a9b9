"""Fixtures of the devices area: loopback push services and the live backend pointed at them."""

import json

import pytest

from devices.vapid import vapid_public_key
from testing.push_services import ApnsService, FcmService, WebPushService


@pytest.fixture(autouse=True)
def _loopback_push_services(settings):
    # The loopback push services answer over http on 127.0.0.1: a tests-only allowance of the
    # outbound guard, never a production setting.
    settings.OUTBOUND_ALLOW_LOOPBACK = True


@pytest.fixture
def live_push(settings):
    settings.PUSH_BACKEND = "live"
    settings.PUSH_CONCURRENCY = 4
    return settings


@pytest.fixture
def webpush_service(live_push):
    service = WebPushService(vapid_public_key=vapid_public_key()).start()
    yield service
    service.stop()


@pytest.fixture
def fcm_service(live_push, tmp_path):
    service = FcmService().start()
    path = tmp_path / "service-account.json"
    path.write_text(json.dumps(service.service_account()))
    live_push.FCM_SERVICE_ACCOUNT_FILE = str(path)
    live_push.FCM_ENDPOINT = service.origin
    yield service
    service.stop()


@pytest.fixture
def apns_service(live_push, tmp_path):
    service = ApnsService().start()
    path = tmp_path / "AuthKey.p8"
    path.write_text(service.signing_key_pem())
    live_push.APNS_KEY_FILE = str(path)
    live_push.APNS_KEY_ID = service.key_id
    live_push.APNS_TEAM_ID = service.team_id
    live_push.APNS_ENDPOINT = service.origin
    yield service
    service.stop()
