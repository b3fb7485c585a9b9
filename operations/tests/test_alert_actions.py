"""The alert actions that act on the cluster: auto rollback of a running rollout and scale-up
of the video workers, on the simulated cluster (the engine driven tick by tick here)."""

import pytest
from django.utils import timezone

from core.models import AuditEntry
from deployments.cluster.simulated import SimulatedCluster
from deployments.models import Rollout, RolloutStatus, SimDeployment
from deployments.services import rollout_start
from deployments.tests.conftest import (  # noqa: F401
    FAST_ANALYSIS,
    drive,
    fast_rollouts,
    k8s,
    service,
    wait_for,
)
from operations.models import Alert, AlertRule
from operations.services import alert_act
from operations.tests.factories import alert, payload

pytestmark = pytest.mark.django_db


def act_on_received(webhook, body) -> list[Alert]:
    """Post the webhook, then run the queued actions here (the worker's part)."""
    response = webhook(body)
    assert response.status_code == 200, response.content
    return [alert_act(alert_id=a["id"]) for a in response.json()["alerts"]]


def high_error_rate(service_name: str, **kwargs) -> dict:
    return alert(
        "HighErrorRate", service=service_name, severity="critical", fingerprint="e440", **kwargs
    )


def test_high_error_rate_rolls_back_the_running_rollout(webhook, service, engineer, drive):  # noqa: F811
    rollout = rollout_start(service=service, image_tag="v2", by=engineer, analysis=FAST_ANALYSIS)
    rollout = drive(rollout, until=lambda r: r.current_weight == 25)
    assert SimulatedCluster().get_canary_weight(service) == 25

    (episode,) = act_on_received(webhook, payload(high_error_rate(service.name)))
    assert episode.outcome == "acted", episode.outcome_detail
    assert f"aborted rollout #{rollout.pk}" in episode.outcome_detail

    rollout = drive(rollout)
    assert rollout.status == RolloutStatus.ABORTED
    assert "alert:HighErrorRate" in rollout.reason and "HighErrorRate test" in rollout.reason
    assert SimulatedCluster().get_canary_weight(service) == 0
    assert rollout.events.filter(kind="abort", actor_label="alert:HighErrorRate").exists()
    assert AuditEntry.objects.filter(
        action="alert.auto_rollback", actor_label="alert:HighErrorRate"
    ).exists()

    # The repeat of the same episode does not act again; a new episode finds nothing to abort.
    act_on_received(webhook, payload(high_error_rate(service.name)))
    assert Alert.objects.get(fingerprint="e440").received_count == 2
    (later,) = act_on_received(
        webhook, payload(high_error_rate(service.name, starts="2026-11-25T09:00:00Z"))
    )
    assert later.outcome == "nothing_to_do" and "no unfinished rollout" in later.outcome_detail


def test_high_error_rate_without_a_service_label_does_nothing(webhook):
    (episode,) = act_on_received(webhook, payload(alert("HighErrorRate", fingerprint="e441")))
    assert episode.outcome == "nothing_to_do" and "service" in episode.outcome_detail


def video_workers(replicas: int) -> SimDeployment:
    now = timezone.now()
    return SimDeployment.objects.create(
        namespace="book2video-production",
        name="video-processing-workers",
        image="registry.book2video.test/video-worker:v7",
        replicas=replicas,
        changed_at=now,
        ready_at=now,
    )


def high_processing_time(hour: int) -> dict:
    return alert("HighProcessingTime", fingerprint="5ca1e", starts=f"2026-11-25T{hour:02d}:00:00Z")


def test_high_processing_time_scales_video_workers_within_the_ceiling(webhook):
    AlertRule.objects.filter(alertname="HighProcessingTime").update(scale_step=2, scale_ceiling=8)
    video_workers(3)
    cluster = SimulatedCluster()
    outcomes = []
    for hour in (6, 6, 7, 8, 9):  # the second is Alertmanager repeating the first episode
        body = payload(high_processing_time(hour))
        outcomes.append(
            (
                [a.outcome for a in act_on_received(webhook, body)],
                cluster.get_deployment_replicas(
                    "book2video-production", "video-processing-workers"
                ),
            )
        )
    assert outcomes == [
        (["acted"], 5),
        (["acted"], 5),  # same episode: alert_act finds it done
        (["acted"], 7),
        (["acted"], 8),  # stopped at the ceiling
        (["nothing_to_do"], 8),
    ]
    assert Alert.objects.filter(alertname="HighProcessingTime").count() == 4
    detail = AuditEntry.objects.filter(action="alert.scale_up").order_by("id").first().detail
    assert "from 3 to 5 replicas" in detail


def test_high_processing_time_scales_through_the_kubernetes_api(webhook, k8s, settings):  # noqa: F811
    """Real HTTP on loopback to kmock's Kubernetes API emulator (no API server can run here)."""
    from kubernetes import client as k8s_client

    from deployments.cluster.kubernetes import api_client_from_settings

    settings.CLUSTER_BACKEND = "kubernetes"
    labels = {"app": "video-processing-workers"}
    k8s_client.AppsV1Api(api_client_from_settings()).create_namespaced_deployment(
        "book2video-production",
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "video-processing-workers", "namespace": "book2video-production"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "worker", "image": "video-worker:v7"}]},
                },
            },
        },
    )
    (episode,) = act_on_received(webhook, payload(high_processing_time(6)))
    assert episode.outcome == "acted", episode.outcome_detail
    deployment = k8s.get("deployments", "book2video-production", "video-processing-workers")
    assert deployment["spec"]["replicas"] == 5
    assert "from 3 to 5 replicas" in episode.outcome_detail


def test_scale_up_of_a_missing_deployment_fails_visibly(webhook):
    (episode,) = act_on_received(webhook, payload(high_processing_time(6)))
    assert episode.outcome == "failed"
    assert "video-processing-workers" in episode.outcome_detail


@pytest.mark.slow
def test_webhook_end_to_end_rolls_back_through_a_real_worker(
    celery_worker,
    settings,
    engineer,
    client,
):
    """Alertmanager's POST → act_on_alert on the worker → rollout_abort → engine → stable."""
    from deployments.tests.factories import ServiceFactory
    from operations.tests.factories import ALERT_TOKEN

    settings.ALERT_WEBHOOK_TOKEN = ALERT_TOKEN
    checkout = ServiceFactory(name="checkout", replicas=2)
    cluster = SimulatedCluster()
    rollout = rollout_start(
        service=checkout,
        image_tag="v2",
        by=engineer,
        analysis={"interval_seconds": 60, "samples_per_step": 50, "failure_limit": 50},
    )
    wait_for(lambda: cluster.get_canary_weight(checkout) > 0)

    response = client.post(
        "/api/alerts/",
        payload(high_error_rate("checkout")),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {ALERT_TOKEN}",
    )
    assert response.status_code == 200 and response.json()["acted"] == 1
    wait_for(lambda: cluster.get_canary_weight(checkout) == 0)
    rollout = wait_for(
        lambda: Rollout.objects.filter(pk=rollout.pk, status=RolloutStatus.ABORTED).first()
    )
    assert "alert:HighErrorRate" in rollout.reason
    episode = Alert.objects.get(fingerprint="e440")
    assert episode.outcome == "acted" and episode.acted_at is not None
