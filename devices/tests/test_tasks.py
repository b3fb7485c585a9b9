"""The notifications queue with a real Celery worker on the real broker."""

import time

import pytest

from config.beat import beat_schedule
from config.celery import app
from devices.models import Delivery, Notification
from devices.tests.factories import DeviceFactory


def test_periodic_tasks_are_declared_in_the_beat_schedule():
    assert beat_schedule()["devices.send_due"]["task"] == "devices.send_due"
    assert beat_schedule()["devices.prune_devices"]["task"] == "devices.prune_devices"
    for name in ("devices.send_due", "devices.prune_devices", "devices.dispatch_notification"):
        assert name in app.tasks
        assert app.tasks[name].queue == "notifications"


@pytest.mark.slow
def test_a_posted_notification_is_fanned_out_by_a_worker(celery_worker, machine_client):
    android = DeviceFactory(user_id="u-42")
    web = DeviceFactory(
        user_id="u-42", platform="web", token=None, endpoint="https://push.example/u42"
    )
    response = machine_client.post(
        "/api/notifications/",
        {"user_id": "u-42", "type": "VIDEO_COMPLETED", "data": {"title": "Walden"}},
        format="json",
    )
    assert response.status_code == 202
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        notification = Notification.objects.get(pk=response.json()["id"])
        if notification.status == "dispatched":
            break
        time.sleep(0.2)
    assert notification.status == "dispatched"
    assert set(Delivery.objects.values_list("device_id", "status")) == {
        (android.pk, "sent"),
        (web.pk, "sent"),
    }
