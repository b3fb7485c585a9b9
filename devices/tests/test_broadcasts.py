"""Push broadcasts to a saved cohort, against the loopback FCM service: every member with an
active device gets one push, in batches, quiet hours and the frequency cap held, sending twice
sends once; delivered/failed counts and the open rate from `$push_opened` events."""

import datetime as dt
import json
from unittest import mock

import pytest
from django.utils import timezone

from analytics.cohorts.services import static_cohort_create, user_ids_from_list
from analytics.store import store
from analytics.store.base import rows_to_json_each_row
from devices.broadcasts import (
    broadcast_create,
    broadcast_plan,
    broadcast_send,
    broadcast_send_batch,
    broadcast_stats,
)
from devices.models import Broadcast, Device, Notification
from devices.tests.factories import DeviceFactory, fcm_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def run_tasks(django_capture_on_commit_callbacks):
    """The broadcast's tasks run in this process when queued (the worker's code path, here
    synchronous so the test can count)."""
    with (
        mock.patch(
            "devices.tasks.plan_broadcast.delay",
            side_effect=lambda pk: broadcast_plan(broadcast_id=pk),
        ),
        mock.patch(
            "devices.tasks.send_broadcast_batch.delay",
            side_effect=lambda pk, i: broadcast_send_batch(broadcast_id=pk, index=i),
        ),
    ):

        def send(broadcast, by):
            with django_capture_on_commit_callbacks(execute=True):
                return broadcast_send(broadcast=broadcast, by=by)

        yield send


def _cohort(users, name="Renderers"):
    return static_cohort_create(
        name=name, users=user_ids_from_list(users), source="list", by="test"
    )


def _devices():
    # u1: two phones; u2 in a zone where it is night (quiet hours); u3 a dead token;
    # u4 an inactive device only; u5 no device at all
    DeviceFactory(user_id="u1", timezone="UTC")
    DeviceFactory(user_id="u1", timezone="UTC")
    DeviceFactory(user_id="u2", timezone="Asia/Tokyo")
    DeviceFactory(user_id="u3", token=fcm_token("gone"), timezone="UTC")
    DeviceFactory(user_id="u4", is_active=False)
    DeviceFactory(user_id="u6", timezone="UTC")  # not in the cohort


@pytest.fixture
def night_in_tokyo(settings):
    tokyo = timezone.now().astimezone(dt.timezone(dt.timedelta(hours=9)))
    start = (tokyo - dt.timedelta(hours=1)).strftime("%H:%M")
    end = (tokyo + dt.timedelta(hours=1)).strftime("%H:%M")
    settings.PUSH_QUIET_HOURS = f"{start}-{end}"  # only Tokyo's local time is inside
    return settings


def test_a_broadcast_reaches_every_member_with_a_device_once(
    analytics_store, fcm_service, run_tasks, night_in_tokyo, settings, pm
):
    settings.PUSH_BROADCAST_BATCH = 2
    _devices()
    cohort = _cohort(["u1", "u2", "u3", "u4", "u5"])
    broadcast = broadcast_create(
        name="Spring sale", cohort_id=cohort.pk, title="50 % off", body="Today only", by=pm
    )
    run_tasks(broadcast, pm)
    broadcast.refresh_from_db()
    assert broadcast.state == "sent"
    assert (broadcast.members, broadcast.no_device, broadcast.recipients) == (5, 2, 3)
    assert (broadcast.batches, broadcast.processed, broadcast.capped) == (2, 3, 0)
    sent = [m["message"] for m in fcm_service.received]
    # u1's two phones and u3's dead token now; u2 waits for the end of Tokyo's night
    assert len(sent) == 3
    assert {m["notification"]["title"] for m in sent} == {"50 % off"}
    assert {json.loads(m["data"]["data"])["broadcast_id"] for m in sent} == {broadcast.pk}
    stats = broadcast_stats(broadcast)
    assert (stats["delivered"], stats["failed"], stats["deferred"]) == (2, 1, 1)
    assert stats["delivered_users"] == 1 and stats["progress"] == 1.0
    assert not Device.objects.get(user_id="u3").is_active
    # sending again, or a batch run again, sends nothing more
    run_tasks(broadcast, pm)
    broadcast_send_batch(broadcast_id=broadcast.pk, index=0)
    broadcast_send_batch(broadcast_id=broadcast.pk, index=1)
    assert len(fcm_service.received) == 3
    assert Notification.objects.filter(broadcast=broadcast).count() == 3
    # the app reports an open (a string or a number id both count), twice: one opener
    opens = [
        {"uuid": f"00000000-0000-0000-0000-00000000000{i}", "event": "$push_opened",
         "user_id": "u1", "timestamp": timezone.now().isoformat(),
         "properties": json.dumps({"broadcast_id": bid})}
        for i, bid in enumerate([broadcast.pk, str(broadcast.pk)])
    ]  # fmt: skip
    store().insert_json_each_row("events", rows_to_json_each_row(opens))
    stats = broadcast_stats(broadcast)
    assert stats["opened_users"] == 1 and stats["open_rate"] == 1.0


def test_the_frequency_cap_holds_back_a_second_broadcast(
    analytics_store, fcm_service, run_tasks, settings, pm
):
    settings.PUSH_BROADCAST_CAP = 1
    settings.PUSH_QUIET_HOURS = ""
    DeviceFactory(user_id="a")
    DeviceFactory(user_id="b")
    first = _cohort(["a"], name="A")
    both = _cohort(["a", "b"], name="AB")
    for cohort in (first, both):
        b = broadcast_create(name=cohort.name, cohort_id=cohort.pk, title="t", body="b", by=pm)
        run_tasks(b, pm)
    second = Broadcast.objects.get(name="AB")
    assert (second.recipients, second.capped, second.processed) == (2, 1, 2)
    assert [m["token"] for m in fcm_service.received].count(
        Device.objects.get(user_id="a").token
    ) == 1
    assert broadcast_stats(second)["delivered"] == 1


def test_a_broadcast_names_a_bad_field(analytics_store, pm):
    from core.errors import InvalidRequest

    cohort = _cohort(["a"])
    for changes, field in (
        ({"cohort_id": 999}, "cohort_id"),
        ({"title": ""}, "title"),
        ({"body": "x" * 1001}, "body"),
    ):
        values = {"name": "n", "cohort_id": cohort.pk, "title": "t", "body": "b"} | changes
        with pytest.raises(InvalidRequest) as err:
            broadcast_create(by=pm, **values)
        assert err.value.field == field


def test_api_and_pages(analytics_store, api_client_for, pm, engineer, client, run_tasks, settings):
    settings.PUSH_QUIET_HOURS = ""
    DeviceFactory(user_id="a")
    cohort = _cohort(["a", "b"])
    api = api_client_for(pm)
    with mock.patch("devices.tasks.plan_broadcast.delay") as plan:
        made = api.post(
            "/api/devices/broadcasts/",
            {"name": "Hello", "cohort_id": cohort.pk, "title": "Hi", "body": "New styles"},
            format="json",
        )
    assert made.status_code == 201 and made.json()["state"] == "draft" and not plan.called
    bad = api.post(
        "/api/devices/broadcasts/",
        {"name": "x", "cohort_id": 99, "title": "t", "body": "b"},
        format="json",
    )
    assert bad.status_code == 404 and "cohort_id" in bad.json()["detail"]  # no such cohort
    pk = made.json()["id"]
    broadcast = Broadcast.objects.get(pk=pk)
    run_tasks(broadcast, pm)
    got = api.get(f"/api/devices/broadcasts/{pk}/").json()
    assert got["state"] == "sent" and got["recipients"] == 1 and got["members"] == 2
    assert got["stats"]["progress"] == 1.0 and got["stats"]["open_rate"] == 0.0
    again = api.post(f"/api/devices/broadcasts/{pk}/send/")
    assert again.status_code == 202 and again.json()["state"] == "sent"
    reader = api_client_for(engineer)
    assert reader.get(f"/api/devices/broadcasts/{pk}/").status_code == 200
    assert reader.post(f"/api/devices/broadcasts/{pk}/send/").status_code == 403
    client.force_login(pm)
    listing = client.get("/devices/broadcasts/").content.decode()
    assert "Hello" in listing and "Renderers" in listing
    detail = client.get(f"/devices/broadcasts/{pk}/").content.decode()
    assert "Open rate" in detail and "1 of 1 recipients" in detail
    empty = client.post("/devices/broadcasts/", {"name": "n", "cohort_id": "", "title": "t"})
    assert empty.status_code == 400
    schema = api.get("/api/schema/?format=json").json()["paths"]
    assert {"get", "post"} <= set(schema["/api/devices/broadcasts/"])
    assert "post" in schema["/api/devices/broadcasts/{id}/send/"]


def test_seed_demo_sends_a_broadcast_to_a_demo_cohort(analytics_store):
    import io

    from devices import demo

    _cohort([f"demo-{1000 + u:06d}" for u in range(10)], name=demo.BROADCAST_COHORT)
    for _ in range(2):
        demo.seed(stdout=io.StringIO())
    broadcast = Broadcast.objects.get()
    assert broadcast.state == "sent" and broadcast.recipients >= 5
    assert broadcast.processed == broadcast.recipients
    assert broadcast_stats(broadcast)["delivered"] + broadcast_stats(broadcast)["pending"] > 0
