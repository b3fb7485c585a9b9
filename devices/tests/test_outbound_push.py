"""Web Push endpoints are URLs the client chose: the outbound guard (core/outbound.py) keeps
them on the push services, off private addresses and away from redirects, at registration and
again at every send."""

import pytest

from devices import services
from devices.models import Delivery, DeliveryStatus, Notification
from devices.tests.factories import DeviceFactory
from testing.push_services import WebPushService
from testing.webhooks import WebhookReceiver

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://10.0.0.5/push/1",
        "https://169.254.169.254/latest/meta-data/",
        "https://kubernetes.default.svc/api",
        "https://push.example.com/push/1",
        "https://fcm.googleapis.com.evil.example/push",
        "https://user:pw@fcm.googleapis.com/fcm/send/x",
    ],
)
def test_registration_refuses_endpoints_off_the_push_services(machine_client, endpoint):
    sub = WebPushService().subscription("x")
    sub["endpoint"] = endpoint
    body = {"user_id": "u", "platform": "web", "subscription": sub}
    response = machine_client.post("/api/devices/", body, format="json")
    assert response.status_code == 422, response.json()
    assert "subscription.endpoint" in response.json()["detail"]


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://fcm.googleapis.com/fcm/send/abc",
        "https://updates.push.services.mozilla.com/wpush/v2/abc",
        "https://web.push.apple.com/QAbc",
        "https://wns2-par02p.notify.windows.com/w/?token=abc",
    ],
)
def test_registration_accepts_the_real_push_services(machine_client, endpoint):
    sub = WebPushService().subscription("x")
    sub["endpoint"] = endpoint
    body = {"user_id": "u", "platform": "web", "subscription": sub}
    assert machine_client.post("/api/devices/", body, format="json").status_code == 201


def _web_device(endpoint: str):
    sub = WebPushService().subscription("x")
    return DeviceFactory(
        user_id="u-web",
        platform="web",
        token=None,
        endpoint=endpoint,
        p256dh=sub["keys"]["p256dh"],
        auth=sub["keys"]["auth"],
    )


def _send(device) -> Delivery:
    notification = Notification.objects.create(
        user_id=device.user_id, type="VIDEO_COMPLETED", data={"title": "t"}
    )
    services.notifications_dispatch(notification_ids=[notification.pk])
    return Delivery.objects.get(device=device)


def test_a_push_service_name_resolving_to_a_private_address_is_refused_at_send(live_push, settings):
    # A name on the allow-list whose DNS answer is not global (here: localhost, resolved by
    # the system resolver at send time) is never connected to.
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    settings.WEBPUSH_ALLOWED_HOSTS = ["localhost"]
    receiver = WebhookReceiver()
    device = _web_device(f"https://localhost:{receiver.port}/ok")
    delivery = _send(device)
    assert delivery.status == DeliveryStatus.FAILED
    assert "non-public address" in delivery.response
    assert receiver.calls == []


def test_a_redirecting_push_service_is_not_followed(live_push):
    receiver = WebhookReceiver()
    device = _web_device(f"{receiver.url}/redirect/push")
    delivery = _send(device)
    assert delivery.status_code == 302 and delivery.status == DeliveryStatus.FAILED
    assert [call["path"] for call in receiver.calls] == ["/redirect/push"]  # never /ok
    assert len(delivery.response) <= 200


def test_only_a_short_sanitized_reason_is_kept_and_returned(live_push, machine_client):
    receiver = WebhookReceiver()
    device = _web_device(f"{receiver.url}/deny")
    delivery = _send(device)
    assert delivery.status_code == 403
    assert delivery.response == "load test failed: p95 above 500 ms"
