"""Live providers over real HTTP against loopback services speaking each protocol.

Web Push, FCM and APNs themselves cannot be reached from here; the loopback services in
testing/push_services.py check the same credentials (VAPID JWT, OAuth2 assertion, APNs provider
token) and decrypt or parse the same payloads.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from devices import services
from devices.models import DeactivationReason, Delivery, Device, Notification
from devices.tests.factories import DeviceFactory, apns_token, fcm_token

pytestmark = pytest.mark.django_db


def _register_web(service, sub_id: str, user_id: str = "u-web") -> Device:
    device, _ = services.device_register(
        user_id=user_id, platform="web", subscription=service.subscription(sub_id), locale="pt-BR"
    )
    return device


def _notify(user_id: str, type_: str = "VIDEO_COMPLETED", data=None) -> Notification:
    notification = Notification.objects.create(
        user_id=user_id, type=type_, data=data or {"title": "Moby Dick"}
    )
    services.notifications_dispatch(notification_ids=[notification.pk])
    notification.refresh_from_db()
    return notification


def _delivery(device: Device) -> Delivery:
    return Delivery.objects.get(device=device)


def test_web_push_is_signed_encrypted_and_decrypted_by_the_push_service(webpush_service):
    device = _register_web(webpush_service, "sub-a")
    notification = _notify("u-web")

    [record] = webpush_service.received
    assert record["id"] == "sub-a"
    assert record["claims"]["aud"] == webpush_service.origin
    assert record["claims"]["sub"].startswith("mailto:")
    # The device's locale picked the pt-BR template; the payload decrypted intact.
    assert record["payload"] == {
        "notification_id": notification.pk,
        "type": "VIDEO_COMPLETED",
        "title": "Seu vídeo está pronto",
        "body": 'Seu vídeo "Moby Dick" está pronto para assistir.',
        "data": {"title": "Moby Dick"},
    }
    delivery = _delivery(device)
    assert (delivery.status, delivery.status_code, delivery.provider) == ("sent", 201, "webpush")
    assert notification.status == "dispatched"


def test_web_push_410_deactivates_the_device(webpush_service):
    device = _register_web(webpush_service, "sub-gone")
    _notify("u-web")
    device.refresh_from_db()
    assert not device.is_active
    assert device.deactivation_reason == DeactivationReason.PROVIDER
    assert "410" in device.deactivation_detail
    assert _delivery(device).status == "deactivated"
    # The next notification does not reach it at all.
    assert _notify("u-web").status == "no_devices"


def test_web_push_429_retries_no_sooner_than_retry_after(webpush_service, settings):
    settings.PUSH_RETRY_BASE_SECONDS = 5
    device = _register_web(webpush_service, "sub-ratelimited")
    before = timezone.now()
    _notify("u-web")
    delivery = _delivery(device)
    assert delivery.status == "retrying" and delivery.attempts == 1
    # Retry-After: 120 wins over the 5 s backoff.
    assert delivery.next_attempt_at >= before + timedelta(seconds=120)
    assert services.deliveries_retry_due(now=before + timedelta(seconds=60)) == {}

    # The endpoint stays rate-limited: a second attempt, still retrying.
    counts = services.deliveries_retry_due(now=delivery.next_attempt_at)
    delivery.refresh_from_db()
    assert counts == {"retrying": 1}
    assert delivery.attempts == 2
    assert len(webpush_service.received) == 2


def test_web_push_gives_up_after_max_attempts(webpush_service, settings):
    settings.PUSH_MAX_ATTEMPTS = 2
    device = _register_web(webpush_service, "sub-servererror")
    _notify("u-web")
    delivery = _delivery(device)
    assert delivery.status == "retrying" and delivery.status_code == 503
    services.deliveries_retry_due(now=delivery.next_attempt_at)
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.attempts == 2
    assert delivery.response.startswith("gave up after 2 attempts")
    device.refresh_from_db()
    assert device.is_active  # a server error is not the device's fault


def test_web_push_signed_with_another_key_is_refused(webpush_service, settings):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    # The console signs with a key the push service did not see at subscription time.
    settings.VAPID_PRIVATE_KEY = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    device = _register_web(webpush_service, "sub-b")
    _notify("u-web")
    assert webpush_service.refused and not webpush_service.received
    delivery = _delivery(device)
    assert (delivery.status, delivery.status_code) == ("failed", 401)


def test_fcm_v1_with_service_account_token(fcm_service):
    ok = DeviceFactory(user_id="u-a", platform="android", token=fcm_token("ok"))
    gone = DeviceFactory(user_id="u-a", platform="android", token=fcm_token("gone"))
    invalid = DeviceFactory(user_id="u-a", platform="android", token=fcm_token("invalid"))
    limited = DeviceFactory(user_id="u-a", platform="android", token=fcm_token("ratelimited"))
    broken = DeviceFactory(user_id="u-a", platform="android", token=fcm_token("servererror"))
    before = timezone.now()
    _notify("u-a", data={"title": "Dune"})

    assert fcm_service.token_requests == 1  # one OAuth2 exchange serves the whole fan-out
    sent = next(r for r in fcm_service.received if r["token"] == ok.token)
    assert sent["message"]["notification"] == {
        "title": "Your video is ready",
        "body": 'Your video "Dune" is ready to watch.',
    }
    status = {d.device_id: (d.status, d.status_code) for d in Delivery.objects.all()}
    assert status[ok.pk] == ("sent", 200)
    assert status[gone.pk] == ("deactivated", 404)
    assert status[invalid.pk] == ("deactivated", 400)
    assert status[limited.pk] == ("retrying", 429)
    assert status[broken.pk] == ("retrying", 503)
    assert set(Device.objects.filter(is_active=False).values_list("pk", flat=True)) == {
        gone.pk,
        invalid.pk,
    }
    retry = Delivery.objects.get(device=limited)
    assert retry.next_attempt_at >= before + timedelta(seconds=90)  # FCM's Retry-After: 90


def test_apns_over_http2_with_provider_token(apns_service):
    ok = DeviceFactory(user_id="u-i", platform="ios", token=apns_token())
    bad = DeviceFactory(user_id="u-i", platform="ios", token=apns_token("0bad"))
    unregistered = DeviceFactory(user_id="u-i", platform="ios", token=apns_token("0410"))
    limited = DeviceFactory(user_id="u-i", platform="ios", token=apns_token("0429"))
    broken = DeviceFactory(user_id="u-i", platform="ios", token=apns_token("0500"))
    _notify("u-i", "PROCESSING_FAILED", {"title": "Dune", "reason": "The file is damaged."})

    assert len(apns_service.received) == 5  # every request passed the provider-token check
    record = next(r for r in apns_service.received if r["token"] == ok.token)
    assert record["headers"]["apns-topic"] == "com.book2video.app"
    assert record["payload"]["aps"]["alert"] == {
        "title": "We could not finish your video",
        "body": 'Processing "Dune" failed. The file is damaged.',
    }
    status = {d.device_id: (d.status, d.status_code) for d in Delivery.objects.all()}
    assert status == {
        ok.pk: ("sent", 200),
        bad.pk: ("deactivated", 400),
        unregistered.pk: ("deactivated", 410),
        limited.pk: ("retrying", 429),
        broken.pk: ("retrying", 500),
    }
    assert "BadDeviceToken" in Device.objects.get(pk=bad.pk).deactivation_detail


def test_apns_with_a_wrong_signing_key_fails_without_deactivating(apns_service, tmp_path, settings):
    from testing.push_services import ApnsService

    other = tmp_path / "other.p8"
    other.write_text(ApnsService().signing_key_pem())
    settings.APNS_KEY_FILE = str(other)
    device = DeviceFactory(user_id="u-i", platform="ios", token=apns_token())
    _notify("u-i")
    delivery = _delivery(device)
    assert (delivery.status, delivery.status_code) == ("failed", 403)
    device.refresh_from_db()
    assert device.is_active


def test_unreachable_provider_is_a_transient_failure(live_push, tmp_path):
    from testing.push_services import ApnsService
    from testing.servers import free_port

    key = tmp_path / "k.p8"
    key.write_text(ApnsService().signing_key_pem())
    live_push.APNS_KEY_FILE, live_push.APNS_KEY_ID, live_push.APNS_TEAM_ID = str(key), "K", "T"
    live_push.APNS_ENDPOINT = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    device = DeviceFactory(user_id="u-i", platform="ios", token=apns_token())
    _notify("u-i")
    delivery = _delivery(device)
    assert delivery.status == "retrying" and delivery.status_code is None
    assert "ConnectError" in delivery.response or "refused" in delivery.response.lower()


def test_missing_credentials_fail_the_delivery_not_the_device(live_push):
    live_push.FCM_SERVICE_ACCOUNT_FILE = ""
    device = DeviceFactory(user_id="u-a", platform="android")
    _notify("u-a")
    delivery = _delivery(device)
    assert delivery.status == "failed" and "not configured" in delivery.response
