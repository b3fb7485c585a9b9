"""The staff pages: devices over time, search, device detail, deactivate, test push."""

import io

import pytest

from core.models import AuditEntry
from devices import demo
from devices.models import Delivery, Device, Notification
from devices.tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db


def test_index_explains_what_to_do_when_empty(client, pm):
    client.force_login(pm)
    page = client.get("/devices/").content.decode()
    assert "No devices yet" in page and "POST /api/devices/" in page


def test_index_charts_search_and_counts(client, pm):
    DeviceFactory(user_id="u-1", platform="ios", token="ab" * 32)
    DeviceFactory(user_id="u-2", platform="android")
    DeviceFactory(user_id="u-2", platform="android", is_active=False, deactivation_reason="stale")
    client.force_login(pm)
    response = client.get("/devices/")
    page = response.content.decode()
    assert 'id="chart-platforms-data"' in page and 'id="chart-versions-data"' in page
    assert response.context["summary"].active == 2 and response.context["summary"].inactive == 1
    found = client.get("/devices/", {"user_id": "u-2"}).context["page"]
    assert {d.user_id for d in found} == {"u-2"} and len(found) == 2
    found = client.get("/devices/", {"user_id": "u-2", "active": "no"}).context["page"]
    assert len(found) == 1
    page = client.get("/devices/", {"user_id": "nobody"}).content.decode()
    assert "No device matches" in page


def test_device_detail_lists_delivery_history(client, pm):
    device = DeviceFactory(user_id="u-1")
    note = Notification.objects.create(user_id="u-1", type="VIDEO_COMPLETED")
    Delivery.objects.create(
        notification=note, device=device, provider="fcm", status="retrying", status_code=429
    )
    client.force_login(pm)
    page = client.get(f"/devices/{device.pk}/").content.decode()
    assert "retrying" in page and "429" in page
    # A product manager sees no engineer actions.
    assert "Send test notification" not in page
    assert client.post(f"/devices/{device.pk}/deactivate/").status_code == 403
    assert client.get(f"/devices/notifications/{note.pk}/").status_code == 200


def test_engineer_deactivates_and_sends_a_test(
    client, engineer, django_capture_on_commit_callbacks
):
    device = DeviceFactory(user_id="u-1")
    client.force_login(engineer)
    assert "Send test notification" in client.get(f"/devices/{device.pk}/").content.decode()
    with django_capture_on_commit_callbacks() as enqueued:
        response = client.post(f"/devices/{device.pk}/send-test/")
    assert response.status_code == 302 and len(enqueued) == 1
    assert Notification.objects.get().target_device == device

    client.post(f"/devices/{device.pk}/deactivate/", {"detail": "lost phone"})
    device.refresh_from_db()
    assert not device.is_active and device.deactivation_reason == "staff"
    assert AuditEntry.objects.get(action="device.deactivate").detail == "lost phone"
    # An inactive device gets no test push: an error message, not a 500.
    response = client.post(f"/devices/{device.pk}/send-test/", follow=True)
    assert "inactive" in response.content.decode()


@pytest.mark.browser
def test_engineer_browses_devices(page, live_asgi, login, engineer, artifact):
    demo.seed(stdout=io.StringIO())
    login(page, engineer)
    page.goto(f"{live_asgi}/devices/")
    page.wait_for_selector("#chart-platforms .main-svg")
    page.wait_for_selector("#chart-versions .main-svg")
    page.screenshot(path=artifact("devices-index.png"), full_page=True)
    device = Device.objects.filter(is_active=True, deliveries__isnull=False).first()
    page.fill("input[name=user_id]", device.user_id)
    page.click("form.filters button")
    page.wait_for_url("**user_id=*")
    page.click(f"a[href='/devices/{device.pk}/']")
    page.wait_for_selector("text=Delivery history")
    page.screenshot(path=artifact("devices-detail.png"), full_page=True)
    page.click("text=Send test notification")
    page.wait_for_selector(".msg.success")
    note = Notification.objects.filter(target_device=device).get()
    page.goto(f"{live_asgi}/devices/notifications/{note.pk}/")
    page.screenshot(path=artifact("devices-notification.png"), full_page=True)
