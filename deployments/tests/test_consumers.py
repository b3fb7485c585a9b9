"""Websocket consumers with WebsocketCommunicator over the real ASGI app and Redis channel layer."""

import asyncio
import os

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.db import transaction

from config.asgi import application
from deployments.models import MetricSample, Rollout, RolloutStatus
from deployments.services import rollout_group, rollout_pause, rollout_publish, sample_message

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]
ORIGIN = (b"origin", b"http://127.0.0.1")


async def cookie_for(user) -> tuple[bytes, bytes]:
    from django.test import Client

    client = Client()
    await sync_to_async(client.force_login)(user)
    value = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    return (b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={value}".encode())


@pytest.fixture
def rollout(service):
    from django.utils import timezone

    r = Rollout.objects.create(
        service=service, image_tag="v2", from_tag="v1", status=RolloutStatus.PROGRESSING
    )
    for version, err in (("stable", 0.5), ("canary", 0.7)):
        MetricSample.objects.create(
            service=service,
            rollout=r,
            version=version,
            at=timezone.now(),
            error_rate=err,
            p99_ms=150,
            request_rate=20,
        )
    return r


async def connect(path, user=None):
    headers = [ORIGIN] + ([await cookie_for(user)] if user else [])
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await communicator.connect()
    return communicator, connected, code


def publish_sample(rollout, version):
    with transaction.atomic():
        sample = MetricSample.objects.filter(rollout=rollout, version=version).first()
        rollout_publish(rollout_id=rollout.pk, messages=[sample_message(sample)])


async def test_anonymous_is_refused(rollout):
    for path in (f"/ws/rollouts/{rollout.pk}/", "/ws/rollouts/"):
        ws, connected, code = await connect(path)
        assert not connected and code == 4403
        await ws.disconnect()  # what a server sends after the close


async def test_product_user_gets_a_snapshot(pm, rollout):
    ws, connected, _ = await connect(f"/ws/rollouts/{rollout.pk}/", pm)
    assert connected
    snap = await ws.receive_json_from(timeout=5)
    assert snap["type"] == "snapshot"
    assert snap["status"]["status"] == "progressing" and snap["status"]["rollout"] == rollout.pk
    assert [s["version"] for s in snap["samples"]] == ["stable", "canary"]
    assert snap["samples"][1]["error_rate"] == 0.7
    assert [s["weight"] for s in snap["steps"]] == [10, 25, 50, 100]
    await ws.disconnect()


async def test_unknown_rollout_closes(engineer):
    ws, connected, _ = await connect("/ws/rollouts/999999/", engineer)
    assert connected
    assert (await ws.receive_json_from(timeout=5))["type"] == "error"
    await ws.disconnect()


async def test_relays_status_event_and_sample_from_services(engineer, pm, rollout):
    ws, _, _ = await connect(f"/ws/rollouts/{rollout.pk}/", pm)
    await ws.receive_json_from(timeout=5)  # snapshot
    listing, _, _ = await connect("/ws/rollouts/", pm)
    assert (await listing.receive_json_from(timeout=5))["type"] == "hello"

    await sync_to_async(rollout_pause)(rollout=rollout, by=engineer, reason="look")
    got = [await ws.receive_json_from(timeout=5) for _ in range(2)]
    assert got[0]["type"] == "event" and got[0]["event"]["kind"] == "pause"
    assert got[0]["event"]["actor"] == engineer.username
    assert (
        got[1]["type"] == "status"
        and got[1]["status"] == "paused"
        and "resume" in got[1]["actions"]
    )
    listed = await listing.receive_json_from(timeout=5)
    assert (
        listed["type"] == "status"
        and listed["service"] == "api-gateway"
        and listed["status"] == "paused"
    )

    await sync_to_async(publish_sample)(rollout, "canary")
    sample = await ws.receive_json_from(timeout=5)
    assert (
        sample["type"] == "sample" and sample["version"] == "canary" and sample["error_rate"] == 0.7
    )
    assert await listing.receive_nothing(timeout=0.3)  # samples are not sent to the list
    await ws.disconnect()
    await listing.disconnect()


async def test_disconnect_leaves_the_group(pm, rollout):
    layer = get_channel_layer()
    group_key = layer._group_key(rollout_group(rollout.pk))

    async def members():
        async with layer.connection(layer.consistent_hash(rollout_group(rollout.pk))) as conn:
            return await conn.zcard(group_key)

    before = await members()
    ws, _, _ = await connect(f"/ws/rollouts/{rollout.pk}/", pm)
    await ws.receive_json_from(timeout=5)
    assert await members() == before + 1
    await ws.disconnect()
    await asyncio.sleep(0.1)
    assert await members() == before


# An engineer watches a paused rollout for minutes. CI's first run shortens the wait
# (ROLLOUT_WS_IDLE_TEST_SECONDS); the default covers five minutes, sixty blocking reads of the
# channel layer, each of which used to race redis-py's socket timeout.
IDLE_SECONDS = float(os.environ.get("ROLLOUT_WS_IDLE_TEST_SECONDS", "300"))


async def test_idle_socket_stays_open_and_gets_the_next_message(pm, rollout):
    ws, _, _ = await connect(f"/ws/rollouts/{rollout.pk}/", pm)
    assert (await ws.receive_json_from(timeout=5))["type"] == "snapshot"
    # receive_nothing raises the consumer's exception if the app ends while idle.
    assert await ws.receive_nothing(timeout=IDLE_SECONDS, interval=1.0)
    await sync_to_async(publish_sample)(rollout, "canary")
    sample = await ws.receive_json_from(timeout=5)
    assert sample["type"] == "sample" and sample["version"] == "canary"
    await ws.disconnect()
