"""Registry, notifications and fan-out through the outbox (the default backend)."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from django.utils import timezone

from core.errors import InvalidRequest
from core.models import AuditEntry
from devices import selectors, services
from devices.models import (
    Delivery,
    Device,
    DeviceLink,
    Notification,
    NotificationTemplate,
)
from devices.providers import parse_retry_after
from devices.tests.factories import DeviceFactory, apns_token, fcm_token

pytestmark = pytest.mark.django_db


def test_register_is_an_upsert_that_reactivates():
    token = fcm_token()
    device, created = services.device_register(user_id="u-1", platform="android", token=token)
    assert created and device.is_active
    services.device_unregister(token=token)
    device.refresh_from_db()
    assert not device.is_active and device.deactivation_reason == "unregistered"

    again, created = services.device_register(
        user_id="u-1", platform="android", token=token, app_version="3.3.0", locale="pt_BR"
    )
    assert not created and again.pk == device.pk
    assert again.is_active and again.deactivation_reason == ""
    assert (again.app_version, again.locale) == ("3.3.0", "pt-BR")
    assert Device.objects.count() == 1


def test_a_token_moves_to_its_new_user_and_the_move_is_audited():
    token = apns_token()
    device, _ = services.device_register(user_id="alice", platform="ios", token=token)
    moved, created = services.device_register(user_id="bob", platform="ios", token=token)
    assert not created and moved.pk == device.pk and moved.user_id == "bob"
    links = list(DeviceLink.objects.filter(device=device).order_by("started_at"))
    assert [(link.user_id, link.ended_at is None) for link in links] == [
        ("alice", False),
        ("bob", True),
    ]
    entry = AuditEntry.objects.get(action="device.move")
    assert entry.detail == "from user alice to user bob"
    # A notification for alice no longer reaches bob's phone.
    alice = Notification.objects.create(user_id="alice", type="VIDEO_COMPLETED")
    services.notifications_dispatch(notification_ids=[alice.pk])
    alice.refresh_from_db()
    assert alice.status == "no_devices"


def test_unregister_unknown_raises():
    with pytest.raises(Device.DoesNotExist):
        services.device_unregister(endpoint="https://push.example/unknown")


@pytest.mark.parametrize(
    ("platform", "token", "field"),
    [
        ("ios", "not-hex", "token"),
        ("android", "short", "token"),
        ("blackberry", "x" * 40, "platform"),
        ("ios", None, "token"),
    ],
)
def test_register_refuses_bad_tokens_naming_the_field(platform, token, field):
    with pytest.raises(InvalidRequest) as error:
        services.device_register(user_id="u", platform=platform, token=token)
    assert error.value.field == field


def test_idempotency_key_returns_the_first_notification(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        first, created = services.notification_create(
            user_id="u-1", type="VIDEO_COMPLETED", idempotency_key="render-42"
        )
        second, created_again = services.notification_create(
            user_id="u-1", type="VIDEO_COMPLETED", idempotency_key="render-42"
        )
    assert created and not created_again and first.pk == second.pk
    assert len(callbacks) == 1  # one fan-out enqueued, not two
    assert Notification.objects.count() == 1


def test_outbox_fan_out_records_one_delivery_per_active_device_and_is_idempotent():
    android = DeviceFactory(user_id="u-1", platform="android")
    ios = DeviceFactory(user_id="u-1", platform="ios", token=apns_token(), locale="pt-BR")
    DeviceFactory(user_id="u-1", is_active=False, deactivated_at=timezone.now())
    DeviceFactory(user_id="someone-else")
    notification = Notification.objects.create(
        user_id="u-1", type="VIDEO_COMPLETED", data={"title": "Emma"}
    )
    counts = services.notifications_dispatch(notification_ids=[notification.pk])
    assert counts == {"sent": 2}
    deliveries = {d.device_id: d for d in Delivery.objects.all()}
    assert set(deliveries) == {android.pk, ios.pk}
    assert all(d.provider == "outbox" and d.attempts == 1 for d in deliveries.values())
    assert '"Seu vídeo está pronto"' in deliveries[ios.pk].response
    assert '"Your video is ready"' in deliveries[android.pk].response
    notification.refresh_from_db()
    assert notification.status == "dispatched" and notification.dispatched_at

    # Run twice (a redelivered task): nothing more is sent or recorded.
    assert services.notifications_dispatch(notification_ids=[notification.pk]) == {}
    assert Delivery.objects.count() == 2


def test_a_fan_out_whose_worker_died_is_redone_without_duplicates():
    done = DeviceFactory(user_id="u-1")
    missing = DeviceFactory(user_id="u-1")
    long_ago = timezone.now() - timedelta(hours=1)
    notification = Notification.objects.create(
        user_id="u-1", type="VIDEO_COMPLETED", status="dispatching", claimed_at=long_ago
    )
    Delivery.objects.create(
        notification=notification, device=done, provider="outbox", status="sent"
    )
    counts = services.notifications_send_due()
    assert counts == {"sent": 1}
    assert set(Delivery.objects.values_list("device_id", flat=True)) == {done.pk, missing.pk}


def test_templates_pick_locale_then_language_then_english():
    NotificationTemplate.objects.create(
        type="VIDEO_COMPLETED", locale="pt", title="Vídeo pronto (pt)", body="{title}"
    )
    from devices.rendering import Renderer

    renderer = Renderer()
    note = Notification(pk=1, user_id="u", type="VIDEO_COMPLETED", data={"title": "Dom Casmurro"})
    title = lambda locale: renderer.message(note, Device(locale=locale)).title  # noqa: E731
    assert title("pt-BR") == "Seu vídeo está pronto"
    assert title("pt-PT") == "Vídeo pronto (pt)"
    assert title("de") == "Your video is ready"
    # A data field a template uses but the notification lacks renders empty, not "{reason}".
    failed = Notification(pk=2, user_id="u", type="PROCESSING_FAILED", data={"title": "X"})
    assert renderer.message(failed, Device(locale="en")).body == 'Processing "X" failed. '


def test_scheduled_notification_goes_out_at_send_at(django_capture_on_commit_callbacks):
    DeviceFactory(user_id="u-1")
    send_at = timezone.now() + timedelta(hours=2)
    with django_capture_on_commit_callbacks() as callbacks:
        notification, _ = services.notification_create(
            user_id="u-1", type="VIDEO_COMPLETED", send_at=send_at
        )
    assert notification.status == "scheduled" and callbacks == []
    # Early: nothing happens, even if asked directly.
    assert services.notifications_dispatch(notification_ids=[notification.pk]) == {}
    assert services.notifications_send_due(now=send_at - timedelta(seconds=1)) == {}
    assert services.notifications_send_due(now=send_at) == {"sent": 1}
    notification.refresh_from_db()
    assert notification.status == "dispatched"


def test_reminders_wait_for_the_end_of_quiet_hours_in_the_device_time_zone(settings):
    settings.PUSH_QUIET_HOURS = "22:00-08:00"
    # 02:30 UTC is 23:30 in São Paulo (UTC-3) and 11:30 in Tokyo.
    now = datetime(2026, 3, 10, 2, 30, tzinfo=UTC)
    sao_paulo = DeviceFactory(user_id="u-1", timezone="America/Sao_Paulo")
    tokyo = DeviceFactory(user_id="u-1", timezone="Asia/Tokyo")
    reminder = Notification.objects.create(user_id="u-1", type="SUBSCRIPTION_REMINDER")
    counts = services.notifications_dispatch(notification_ids=[reminder.pk], now=now)
    assert counts == {"deferred": 1, "sent": 1}
    deferred = Delivery.objects.get(device=sao_paulo)
    assert deferred.status == "deferred" and deferred.attempts == 0
    # 08:00 the next morning in São Paulo is 11:00 UTC.
    assert deferred.next_attempt_at == datetime(2026, 3, 10, 11, 0, tzinfo=UTC)
    assert Delivery.objects.get(device=tokyo).status == "sent"

    # Other types are not held back.
    video = Notification.objects.create(user_id="u-1", type="VIDEO_COMPLETED")
    assert services.notifications_dispatch(notification_ids=[video.pk], now=now) == {"sent": 2}

    assert services.deliveries_retry_due(now=deferred.next_attempt_at) == {"sent": 1}
    deferred.refresh_from_db()
    assert deferred.status == "sent" and deferred.attempts == 1


def test_quiet_hours_can_be_turned_off(settings):
    settings.PUSH_QUIET_HOURS = ""
    DeviceFactory(user_id="u-1", timezone="America/Sao_Paulo")
    reminder = Notification.objects.create(user_id="u-1", type="SUBSCRIPTION_REMINDER")
    now = datetime(2026, 3, 10, 2, 30, tzinfo=UTC)
    assert services.notifications_dispatch(notification_ids=[reminder.pk], now=now) == {"sent": 1}


def test_a_deferred_delivery_to_a_device_deactivated_meanwhile_fails():
    device = DeviceFactory(user_id="u-1")
    note = Notification.objects.create(user_id="u-1", type="SUBSCRIPTION_REMINDER")
    delivery = Delivery.objects.create(
        notification=note,
        device=device,
        provider="outbox",
        status="deferred",
        next_attempt_at=timezone.now(),
    )
    services.device_unregister(token=device.token)
    assert services.deliveries_retry_due() == {"failed": 1}
    delivery.refresh_from_db()
    assert delivery.status == "failed" and "unregistered" in delivery.response


def test_retry_delay_backs_off_and_honours_retry_after(settings):
    settings.PUSH_RETRY_BASE_SECONDS = 30
    assert [services.retry_delay(n, None) for n in (1, 2, 3)] == [30, 60, 120]
    assert services.retry_delay(1, 300) == 300
    assert services.retry_delay(3, 10) == 120
    assert services.retry_delay(30, None) == 3600
    assert parse_retry_after("120") == 120
    in_a_minute = (datetime.now(UTC) + timedelta(seconds=61)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert 55 <= parse_retry_after(in_a_minute) <= 61
    assert parse_retry_after("soon") is None


def test_prune_deactivates_stale_devices_and_deletes_long_inactive_ones(settings):
    settings.PUSH_STALE_AFTER_DAYS = 90
    settings.PUSH_DELETE_INACTIVE_AFTER_DAYS = 30
    now = timezone.now()
    fresh = DeviceFactory(last_seen_at=now - timedelta(days=10))
    stale = DeviceFactory(last_seen_at=now - timedelta(days=91))
    recently_off = DeviceFactory(is_active=False, deactivated_at=now - timedelta(days=5))
    long_off = DeviceFactory(is_active=False, deactivated_at=now - timedelta(days=31))
    assert services.devices_prune(now=now) == {"deactivated": 1, "deleted": 1}
    assert set(Device.objects.values_list("pk", flat=True)) == {fresh.pk, stale.pk, recently_off.pk}
    stale.refresh_from_db()
    assert not stale.is_active and stale.deactivation_reason == "stale"
    assert services.devices_prune(now=now) == {"deactivated": 0, "deleted": 0}
    assert not Device.objects.filter(pk=long_off.pk).exists()


def test_test_notification_goes_to_one_device_only(engineer, django_capture_on_commit_callbacks):
    target = DeviceFactory(user_id="u-1")
    DeviceFactory(user_id="u-1")
    with django_capture_on_commit_callbacks(execute=False):
        note = services.notification_send_test(device=target, by=engineer)
    services.notifications_dispatch(notification_ids=[note.pk])
    assert list(Delivery.objects.values_list("device_id", flat=True)) == [target.pk]
    assert AuditEntry.objects.filter(action="device.test_notification", actor=engineer).exists()


def test_active_devices_over_time_matches_a_day_by_day_count(settings):
    """The running-sum selector against a brute-force pandas count of every device per day."""
    import random

    rng = random.Random(7)
    today = datetime(2026, 5, 31, tzinfo=UTC).date()
    rows = []
    for i in range(300):
        created = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=rng.randrange(150 * 24))
        ended = created + timedelta(days=rng.randrange(1, 80)) if rng.random() < 0.4 else None
        rows.append(
            Device(
                user_id=f"u{i}",
                platform=rng.choice(["ios", "android", "web"]),
                token=None,
                endpoint=None,
                app_version=rng.choice(["3.0.0", "3.1.0", "3.10.1"]),
                last_seen_at=created,
                is_active=ended is None,
                deactivated_at=ended,
            )
        )
        if rows[-1].platform == "web":
            rows[-1].endpoint = f"https://push.example/{i}"
        else:
            rows[-1].token = fcm_token()
    Device.objects.bulk_create(rows)
    # created_at is auto_now_add: set it afterwards, row by row.
    for device, source in zip(Device.objects.order_by("pk"), rows, strict=True):
        Device.objects.filter(pk=device.pk).update(created_at=source.last_seen_at)
    frame = pd.DataFrame(
        [
            {
                "platform": r.platform,
                "version": r.app_version,
                "start": r.last_seen_at.date(),
                "end": r.deactivated_at.date() if r.deactivated_at else None,
            }
            for r in rows
        ]
    )
    for by, column in (("platform", "platform"), ("app_version", "version")):
        series = selectors.active_devices_over_time(by=by, days=120, today=today)
        for key, counts in series.counts.items():
            for day, count in zip(series.days, counts, strict=True):
                alive = frame[
                    (frame[column] == key)
                    & (frame["start"] <= day)
                    & (
                        frame["end"].isna()
                        | (frame["end"].apply(lambda e, d=day: e is None or e > d))
                    )
                ]
                assert count == len(alive), (by, key, day)


def test_reactivation_starts_a_new_link():
    token = fcm_token()
    device, _ = services.device_register(user_id="u-1", platform="android", token=token)
    services.device_unregister(token=token)
    services.device_register(user_id="u-1", platform="android", token=token)
    links = list(DeviceLink.objects.filter(device=device).order_by("started_at"))
    assert [link.ended_at is None for link in links] == [False, True]
