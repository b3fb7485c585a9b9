"""Rollout hooks (Flagger's webhook semantics) and chat notifications, against a loopback
receiver (testing/webhooks.py). A real chat service cannot exist here; the receiver answers
as Slack's incoming webhooks do (`ok`, text/plain)."""

import pytest

from deployments.cluster.simulated import SimulatedCluster
from deployments.models import AlertProvider, HookType, Rollout, RolloutHook, RolloutStatus
from deployments.notify import DeliveryFailed, notification_send, providers_for
from deployments.services import rollout_post_hooks, rollout_promote, rollout_start
from deployments.tests.conftest import wait_for
from testing.webhooks import WebhookReceiver

QUICK = {"interval_seconds": 0.2, "samples_per_step": 1, "failure_limit": 2}


@pytest.fixture
def receiver(settings):
    # The outbound guard allows loopback http only in the tests' settings.
    receiver = WebhookReceiver(slow_seconds=1.5)
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    yield receiver
    receiver.close()


def hook(service, receiver, name, type_, path, **extra):
    return RolloutHook.objects.create(
        service=service, name=name, type=type_, url=f"{receiver.url}{path}", **extra
    )


def start(service, engineer, tag="v2", **extra):
    return rollout_start(
        service=service, image_tag=tag, by=engineer, steps=[50, 100], analysis=QUICK, **extra
    )


def kinds(rollout):
    return [e.kind for e in rollout.events.all()]


pytestmark = pytest.mark.django_db


def test_pre_rollout_hook_gets_flaggers_body_and_lets_the_rollout_go(
    service, engineer, drive, receiver
):
    hook(service, receiver, "smoke", HookType.PRE_ROLLOUT, "/ok", metadata={"cmd": "hey -z 1m"})
    rollout = drive(start(service, engineer))
    assert rollout.status == RolloutStatus.PROMOTED
    (body,) = receiver.bodies("/ok")
    assert body == {
        "name": "api-gateway",
        "namespace": service.namespace,
        "phase": "Progressing",
        "type": "pre-rollout",
        "checksum": f"{rollout.pk}-v2",
        "rollout_id": rollout.pk,
        "image_tag": "v2",
        "from_tag": "v1",
        "step": 0,
        "weight": 0,
        "metadata": {"cmd": "hey -z 1m"},
    }
    assert "hooks_passed" in kinds(rollout)
    assert rollout.hook_state["smoke"]["status"] == 200 and rollout.hook_state["smoke"]["ok"]


def test_failing_pre_rollout_hook_rolls_back_before_any_canary_traffic(
    service, engineer, drive, receiver
):
    hook(service, receiver, "db-migrated", HookType.PRE_ROLLOUT, "/deny")
    rollout = drive(start(service, engineer))
    assert rollout.status == RolloutStatus.ROLLED_BACK
    assert "pre-rollout hook db-migrated: HTTP 403" in rollout.reason
    assert kinds(rollout).count("hook_failed") == 2  # the failure limit
    assert (
        SimulatedCluster().get_deployment_replicas(service.namespace, "api-gateway-canary") is None
    )
    assert len(receiver.bodies("/deny")) == 2


def test_rollout_hook_runs_every_interval_and_its_failure_rolls_back(
    service, engineer, drive, receiver
):
    hook(service, receiver, "load-test", HookType.ROLLOUT, "/ok")
    rollout = drive(start(service, engineer))
    assert rollout.status == RolloutStatus.PROMOTED
    assert len(receiver.bodies("/ok")) == 2  # one analysis interval per step
    RolloutHook.objects.filter(name="load-test").update(url=f"{receiver.url}/deny")
    rollout = drive(start(service, engineer, tag="v3"))
    assert rollout.status == RolloutStatus.ROLLED_BACK
    assert "rollout hook load-test: HTTP 403 (load test failed: p95 above 500 ms)" in rollout.reason
    assert rollout.samples.count() == 0  # a failed hook skips the interval's metrics


def test_hook_retries_a_5xx_then_passes(service, engineer, drive, receiver):
    hook(service, receiver, "flaky", HookType.PRE_ROLLOUT, "/flaky/1", retries=1)
    rollout = drive(start(service, engineer))
    assert rollout.status == RolloutStatus.PROMOTED
    assert rollout.hook_state["flaky"]["attempts"] == 2
    assert len(receiver.bodies("/flaky/1")) == 2


def test_confirm_promotion_gate_waits_and_re_asks_until_it_opens(
    service, engineer, drive, receiver
):
    hook(service, receiver, "approval", HookType.CONFIRM_PROMOTION, "/gate")
    rollout = drive(start(service, engineer), until=lambda r: len(receiver.bodies("/gate")) >= 3)
    assert rollout.status == RolloutStatus.PROGRESSING and rollout.phase == "promote"
    assert rollout.reason.startswith("waiting for confirm-promotion: confirm-promotion hook")
    assert kinds(rollout).count("gate_waiting") == 1  # said once, re-asked quietly
    assert receiver.bodies("/gate")[0]["phase"] == "Promoting"
    receiver.open_gate()
    rollout = drive(rollout)
    assert rollout.status == RolloutStatus.PROMOTED and rollout.promotion_confirmed
    assert "promotion_confirmed" in kinds(rollout)


def test_a_persons_promote_is_the_confirmation(service, engineer, drive, receiver):
    hook(service, receiver, "approval", HookType.CONFIRM_PROMOTION, "/gate")
    rollout = drive(start(service, engineer), until=lambda r: receiver.bodies("/gate"))
    rollout_promote(rollout=rollout, by=engineer, reason="approved in chat")
    asked = len(receiver.bodies("/gate"))
    rollout = drive(rollout)
    assert rollout.status == RolloutStatus.PROMOTED
    assert len(receiver.bodies("/gate")) == asked


def test_rollback_hook_answering_2xx_rolls_back(service, engineer, drive, receiver):
    hook(service, receiver, "kill-switch", HookType.ROLLBACK, "/deny")
    rollout = drive(start(service, engineer))
    assert rollout.status == RolloutStatus.PROMOTED  # 403: "no rollback"
    RolloutHook.objects.filter(name="kill-switch").update(url=f"{receiver.url}/ok")
    rollout = drive(start(service, engineer, tag="v3"))
    assert rollout.status == RolloutStatus.ROLLED_BACK
    assert rollout.reason == "rollback hook kill-switch asked for a rollback (HTTP 200)"


def test_post_rollout_hooks_run_after_the_end_and_decide_nothing(
    service, engineer, drive, receiver, django_capture_on_commit_callbacks
):
    hook(service, receiver, "announce", HookType.POST_ROLLOUT, "/deny")
    rollout = drive(start(service, engineer))
    assert rollout.status == RolloutStatus.PROMOTED
    assert receiver.bodies("/deny") == []  # not inside the engine's tick
    rollout_post_hooks(rollout_id=rollout.pk)
    (body,) = receiver.bodies("/deny")
    assert body["phase"] == "Succeeded" and body["type"] == "post-rollout"
    rollout.refresh_from_db()
    assert rollout.status == RolloutStatus.PROMOTED
    assert rollout.events.filter(kind="hook_failed", message__contains="announce").exists()


def test_redirect_is_not_followed_and_a_slow_hook_times_out(service, engineer, drive, receiver):
    hook(service, receiver, "moved", HookType.PRE_ROLLOUT, "/redirect")
    rollout = drive(start(service, engineer))
    assert rollout.status == RolloutStatus.ROLLED_BACK
    assert "HTTP 302" in rollout.reason
    assert receiver.bodies("/ok") == []
    RolloutHook.objects.all().delete()
    hook(service, receiver, "slow", HookType.PRE_ROLLOUT, "/slow", timeout_seconds=0.3, retries=0)
    rollout = drive(start(service, engineer, tag="v3"))
    assert rollout.status == RolloutStatus.ROLLED_BACK
    assert rollout.hook_state["slow"]["status"] is None
    assert rollout.hook_state["slow"]["ms"] < 1400  # the receiver would answer after 1.5 s


def test_hook_on_a_private_address_is_refused_by_the_guard(service, engineer, drive, receiver):
    RolloutHook.objects.create(
        service=service, name="metadata", type=HookType.PRE_ROLLOUT, url="https://169.254.169.254/"
    )
    rollout = drive(start(service, engineer))
    assert rollout.status == RolloutStatus.ROLLED_BACK
    assert rollout.hook_state["metadata"]["status"] is None
    assert rollout.hook_state["metadata"]["attempts"] == 1  # refused, not retried


def test_rollout_page_and_api_show_hooks_without_their_urls(
    service, engineer, drive, receiver, client, api_client_for
):
    hook(service, receiver, "smoke", HookType.PRE_ROLLOUT, "/ok?token=s3cret")
    rollout = drive(start(service, engineer))
    client.force_login(engineer)
    page = client.get(f"/deployments/rollouts/{rollout.pk}/").content.decode()
    assert "Gates and hooks" in page and "HTTP 200" in page and "s3cret" not in page
    data = api_client_for(engineer).get(f"/api/rollouts/{rollout.pk}/").json()
    (h,) = data["hooks"]
    assert h["name"] == "smoke" and h["host"] == "127.0.0.1" and h["last"]["status"] == 200
    assert "s3cret" not in str(data)


# Notifications -----------------------------------------------------------------------------------


def provider(receiver, name, path, **extra):
    return AlertProvider.objects.create(name=name, url=f"{receiver.url}{path}", **extra)


def test_providers_filter_by_scope_and_severity(service, engineer, drive, receiver):
    everything = provider(receiver, "all-info", "/slack")
    errors = provider(receiver, "errors", "/slack", min_severity="error")
    provider(receiver, "other-ns", "/slack", namespace="elsewhere")
    mine = provider(receiver, "mine", "/slack", namespace=service.namespace)
    rollout = drive(start(service, engineer, tag="v3-fault"))
    assert rollout.status == RolloutStatus.ROLLED_BACK
    started = rollout.events.get(kind="progressing")
    rolled_back = rollout.events.get(kind="rolled_back")
    assert {p.name for p in providers_for(started)} == {everything.name, mine.name}
    assert {p.name for p in providers_for(rolled_back)} == {everything.name, mine.name, errors.name}


def test_slack_and_json_messages_reach_the_receiver(service, engineer, drive, receiver, settings):
    settings.CONSOLE_URL = "https://console.book2video.test"
    slack = provider(receiver, "chat", "/slack")
    generic = provider(receiver, "pager", "/ok", kind="json")
    rollout = drive(start(service, engineer, tag="v3-fault"))
    event = rollout.events.get(kind="rolled_back")
    assert notification_send(event_id=event.pk, provider_id=slack.pk) == 200
    assert notification_send(event_id=event.pk, provider_id=generic.pk) == 200
    (text,) = [b["text"] for b in receiver.bodies("/slack")]
    url = f"https://console.book2video.test/deployments/rollouts/{rollout.pk}/"
    assert text.startswith(f":x: *{service.namespace}/api-gateway* v1 → v3-fault rolled back: ")
    assert f"<{url}|rollout #{rollout.pk}>" in text and "error_rate" in text
    (body,) = receiver.bodies("/ok")
    assert body["event"] == "rolled_back" and body["severity"] == "error"
    assert body["rollout_id"] == rollout.pk and body["url"] == url


def test_delivery_retries_what_may_pass_and_drops_what_cannot(service, engineer, drive, receiver):
    flaky = provider(receiver, "flaky", "/flaky/1")
    private = AlertProvider.objects.create(name="internal", url="https://10.0.0.5/hook")
    rollout = drive(start(service, engineer))
    event = rollout.events.get(kind="promoted")
    with pytest.raises(DeliveryFailed):
        notification_send(event_id=event.pk, provider_id=flaky.pk)
    assert notification_send(event_id=event.pk, provider_id=flaky.pk) == 200
    assert notification_send(event_id=event.pk, provider_id=private.pk) is None


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_notifies_start_and_rollback(celery_worker, service, engineer, receiver):
    provider(receiver, "chat", "/slack", min_severity="info")
    rollout = start(service, engineer, tag="v3-fault")
    wait_for(lambda: Rollout.objects.get(pk=rollout.pk).is_finished, timeout=40)
    texts = wait_for(
        lambda: (
            (t := [b["text"] for b in receiver.bodies("/slack")])
            and any("rolled back" in x for x in t)
            and t
        ),
        timeout=30,
    )
    assert any(" started: " in t for t in texts)
    assert sum("rolled back" in t for t in texts) == 1


def test_admin_refuses_a_url_the_guard_refuses(service):
    from django.core.exceptions import ValidationError

    hook = RolloutHook(
        service=service, name="plain", type=HookType.ROLLOUT, url="http://x.example/"
    )
    with pytest.raises(ValidationError, match="only https"):
        hook.full_clean()
    with pytest.raises(ValidationError, match="credentials"):
        AlertProvider(name="chat", url="https://u:p@hooks.slack.com/x").full_clean()
    RolloutHook(
        service=service, name="ok", type=HookType.ROLLOUT, url="https://loadtest.example/run"
    ).full_clean()
