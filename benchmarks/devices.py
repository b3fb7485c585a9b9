"""`bench devices`: fan-out throughput (outbox and loopback Web Push) and registration latency.

Each fan-out figure is compared with the raw provider call rate measured in the same run: the
provider's own calls on in-memory messages, without the database, rendering or bookkeeping.
"""

import multiprocessing
import statistics
import time
import uuid

from django.db import connection
from django.db.models import Count
from django.test import Client, override_settings
from django.utils import timezone

from benchmarks.harness import free_port, percentile
from core.services import api_key_create
from devices import services
from devices.models import Delivery, Device, Notification
from devices.providers import PushMessage, provider_for
from devices.vapid import vapid_public_key
from testing.push_services import WebPushService

PREFIX = "bench-"
BATCH = 1000  # notifications per fan-out call, as devices.send_due takes them


def _cleanup() -> None:
    Delivery.objects.filter(device__user_id__startswith=PREFIX).delete()
    Notification.objects.filter(user_id__startswith=PREFIX).delete()
    Device.objects.filter(user_id__startswith=PREFIX).delete()


def _make_devices(n: int, *, web: WebPushService | None = None) -> list[int]:
    """n devices, two per user (phone and web, say); returns one notification id per user."""
    now = timezone.now()
    run = uuid.uuid4().hex[:8]
    subscription = web.subscription("shared", own_keys=False) if web else None
    rows = []
    for i in range(n):
        user = f"{PREFIX}{run}-{i // 2}"
        if web:
            rows.append(
                Device(
                    user_id=user,
                    platform="web",
                    endpoint=f"{web.origin}/push/{run}-{i}",
                    p256dh=subscription["keys"]["p256dh"],
                    auth=subscription["keys"]["auth"],
                    last_seen_at=now,
                )
            )
        else:
            platform = ("ios", "android", "web")[i % 3]
            address = (
                {"endpoint": f"https://push.example/{run}-{i}"}
                if platform == "web"
                else {
                    "token": f"{run}{i:056x}"[:64] if platform == "ios" else f"fcm-{run}-{i:020d}"
                }
            )
            rows.append(Device(user_id=user, platform=platform, last_seen_at=now, **address))
    Device.objects.bulk_create(rows, batch_size=2000)
    notes = Notification.objects.bulk_create(
        [
            Notification(
                user_id=f"{PREFIX}{run}-{u}", type="VIDEO_COMPLETED", data={"title": f"Book {u}"}
            )
            for u in range((n + 1) // 2)
        ],
        batch_size=2000,
    )
    return [note.pk for note in notes]


def _fan_out(ids: list[int]) -> tuple[int, float]:
    started = time.perf_counter()
    delivered = 0
    for start in range(0, len(ids), BATCH):
        counts = services.notifications_dispatch(notification_ids=ids[start : start + BATCH])
        delivered += sum(counts.values())
    return delivered, time.perf_counter() - started


def _raw_rate(platform: str, devices: list[Device]) -> tuple[int, float]:
    message = PushMessage(1, "VIDEO_COMPLETED", "Your video is ready", "Book", {"title": "Book"})
    provider = provider_for(platform)
    started = time.perf_counter()
    try:
        for start in range(0, len(devices), BATCH):
            provider.send_many([(d, message) for d in devices[start : start + BATCH]])
    finally:
        provider.close()
    return len(devices), time.perf_counter() - started


def bench_outbox(stdout, n: int) -> tuple[float, float]:
    with override_settings(PUSH_BACKEND="outbox"):
        ids = _make_devices(n)
        delivered, seconds = _fan_out(ids)
        devices = list(Device.objects.filter(user_id__startswith=PREFIX)[:n])
        raw_n, raw_s = _raw_rate("android", devices)
    assert delivered == n, f"{delivered} deliveries for {n} devices"
    rate, raw = delivered / seconds, raw_n / raw_s
    stdout.write(
        f"outbox fan-out: {delivered:,} deliveries in {seconds:.2f} s = {rate:,.0f}/s "
        f"(raw outbox calls: {raw:,.0f}/s)"
    )
    _cleanup()
    return rate, raw


def _serve(service: WebPushService, port: int) -> None:
    service.start(port)
    while True:
        time.sleep(3600)


def bench_webpush(stdout, n: int) -> tuple[float, float]:
    # The push service runs in its own process so that it does not share the sender's GIL.
    service = WebPushService(vapid_public_key=vapid_public_key(), keep_records=False)
    port = free_port()
    process = multiprocessing.get_context("fork").Process(
        target=_serve, args=(service, port), daemon=True
    )
    connection.close()  # the child must not inherit the database connection
    process.start()
    service.origin = f"http://127.0.0.1:{port}"
    try:
        time.sleep(0.5)
        with override_settings(
            PUSH_BACKEND="live", WEBPUSH_ALLOW_HTTP_LOOPBACK=True, OUTBOUND_ALLOW_LOOPBACK=True
        ):
            ids = _make_devices(n, web=service)
            delivered, seconds = _fan_out(ids)
            statuses = dict(
                Delivery.objects.filter(device__user_id__startswith=PREFIX)
                .values_list("status")
                .annotate(n=Count("pk"))
            )
            # The raw rate is a rate: 10,000 calls measure it as well as 100,000.
            devices = list(Device.objects.filter(user_id__startswith=PREFIX)[: min(n, 10_000)])
            raw_n, raw_s = _raw_rate("web", devices)
    finally:
        process.terminate()
        process.join(5)
    if statuses != {"sent": n}:
        # Under heavy machine load a few requests time out; they are retried, as in production.
        retrying = Delivery.objects.filter(
            device__user_id__startswith=PREFIX, status="retrying"
        ).first()
        stdout.write(f"delivery statuses: {statuses}; e.g. {retrying.response if retrying else ''}")
    rate, raw = delivered / seconds, raw_n / raw_s
    stdout.write(
        f"web push fan-out (loopback service, VAPID + aes128gcm): {delivered:,} in "
        f"{seconds:.2f} s = {rate:,.0f}/s (raw pywebpush calls: {raw:,.0f}/s)"
    )
    _cleanup()
    return rate, raw


def bench_registration(stdout, n: int) -> float:
    # No rate limit on the bench's key (0): the figure is registration, not the limit.
    _key, raw = api_key_create(
        name=f"bench-{uuid.uuid4().hex[:6]}", rate_limit_per_second=0, by=None
    )
    client = Client(HTTP_X_API_KEY=raw)
    run = uuid.uuid4().hex[:8]
    times = []
    for i in range(n):
        # Half new devices, half refreshes of an existing one (the common case at app start).
        token = f"fcm-{run}-{(i if i % 2 == 0 else i - 1):020d}"
        body = {
            "user_id": f"{PREFIX}{i // 4}",
            "platform": "android",
            "token": token,
            "app_version": "3.2.1",
            "locale": "pt-BR",
            "timezone": "America/Sao_Paulo",
        }
        started = time.perf_counter()
        response = client.post("/api/devices/", body, content_type="application/json")
        times.append(time.perf_counter() - started)
        assert response.status_code in (200, 201), response.content
    p50, p99 = statistics.median(times) * 1000, percentile(times, 99) * 1000
    stdout.write(
        f"registration API (in-process client, {connection.vendor}): "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms over {n} calls"
    )
    _key.delete()
    _cleanup()
    return p99


def bench_devices(stdout, *, quick: bool = False) -> None:
    _cleanup()
    outbox_n, web_n, reg_n = (5_000, 1_000, 300) if quick else (100_000, 100_000, 2_000)
    p99 = bench_registration(stdout, reg_n)
    web, web_raw = bench_webpush(stdout, web_n)
    outbox, outbox_raw = bench_outbox(stdout, outbox_n)
    stdout.write(
        f"registration p99 {p99:.1f} ms; web push {web:,.0f}/s, "
        f"ratio {web / web_raw:.2f} vs raw pywebpush"
    )
    stdout.write(
        f"devices: {outbox:,.0f} outbox deliveries/s to {outbox_n:,} devices, "
        f"ratio {outbox / outbox_raw:.3f} vs raw outbox provider calls"
    )
