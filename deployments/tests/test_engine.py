"""The engine driven tick by tick in the test thread, on the simulated cluster."""

import pytest

from deployments.cluster.simulated import SimulatedCluster
from deployments.models import MetricSample, Rollout, RolloutStatus
from deployments.services import rollout_abort, rollout_pause, rollout_resume, rollout_start
from deployments.tests.conftest import FAST_ANALYSIS

pytestmark = pytest.mark.django_db


def start(service, engineer, tag="v2", **kwargs):
    return rollout_start(
        service=service, image_tag=tag, by=engineer, analysis=FAST_ANALYSIS, **kwargs
    )


def test_healthy_tag_is_promoted_step_by_step(service, engineer, drive):
    weights_seen = []
    cluster = SimulatedCluster()
    rollout = drive(
        start(service, engineer),
        between=lambda r: weights_seen.append(cluster.get_canary_weight(service)),
    )
    assert rollout.status == RolloutStatus.PROMOTED
    assert [w for i, w in enumerate(weights_seen) if i == 0 or w != weights_seen[i - 1]] == [
        0,
        10,
        25,
        50,
        100,
        0,
    ]
    service.refresh_from_db()
    assert service.stable_tag == "v2"
    assert cluster.get_canary_weight(service) == 0
    assert cluster.deployment_state(service.namespace, "api-gateway-canary") is None
    stable = cluster.deployment_state(service.namespace, "api-gateway-stable")
    assert stable.image.endswith(":v2") and stable.replicas == 4
    kinds = list(rollout.events.values_list("kind", flat=True))
    assert kinds.count("step") == 4 and kinds[-1] == "promoted"
    assert MetricSample.objects.filter(rollout=rollout, version="canary").count() == 8


def test_fault_tag_is_rolled_back_with_traffic_on_stable(service, engineer, drive):
    rollout = drive(start(service, engineer, tag="v2-fault"))
    assert rollout.status == RolloutStatus.ROLLED_BACK
    assert "error_rate" in rollout.reason
    cluster = SimulatedCluster()
    assert cluster.get_canary_weight(service) == 0
    assert cluster.get_deployment_replicas(service.namespace, "api-gateway-canary") == 0
    service.refresh_from_db()
    assert service.stable_tag == "v1"


def test_no_metrics_pauses_and_never_promotes(service, engineer, drive):
    rollout = drive(start(service, engineer, tag="v2-nodata"))
    assert rollout.status == RolloutStatus.PAUSED
    assert rollout.reason.startswith("no data")
    assert rollout.next_tick_at is None


def test_pause_holds_and_resume_continues(service, engineer, drive):
    rollout = drive(start(service, engineer), until=lambda r: r.current_weight == 25)
    rollout_pause(rollout=rollout, by=engineer, reason="checking logs")
    rollout = Rollout.objects.get(pk=rollout.pk)
    assert drive(rollout).status == RolloutStatus.PAUSED
    rollout_resume(rollout=rollout, by=engineer)
    assert drive(rollout).status == RolloutStatus.PROMOTED


def test_abort_by_an_alert_label_rolls_back(service, engineer, drive):
    rollout = drive(start(service, engineer), until=lambda r: r.current_weight == 10)
    rollout_abort(rollout=rollout, by="alert:HighErrorRate", reason="5xx burst")
    rollout = drive(rollout)
    assert rollout.status == RolloutStatus.ABORTED
    assert "alert:HighErrorRate" in rollout.reason
    assert SimulatedCluster().get_canary_weight(service) == 0


def test_timed_pause_resumes_on_time(service, engineer, drive):
    steps = [{"weight": 50, "pause": 0.5}, 100]
    rollout = drive(start(service, engineer, steps=steps), until=lambda r: r.status == "paused")
    assert rollout.pause_until is not None
    assert drive(rollout).status == RolloutStatus.PROMOTED


class BrokenAt25(SimulatedCluster):
    """The simulated cluster with a bug injected: moving traffic to 25 % raises."""

    def set_canary_weight(self, service, weight, *, match=None):
        if weight == 25:
            raise RuntimeError("injected failure")
        super().set_canary_weight(service, weight, match=match)


def test_unexpected_error_rolls_back_and_ends_failed(service, engineer, drive):
    rollout = drive(start(service, engineer), cluster=BrokenAt25())
    assert rollout.status == RolloutStatus.FAILED
    assert "injected failure" in rollout.reason
    assert SimulatedCluster().get_canary_weight(service) == 0
    assert SimulatedCluster().get_deployment_replicas(service.namespace, "api-gateway-canary") == 0
    kinds = list(rollout.events.values_list("kind", flat=True))
    assert kinds[-2:] == ["error", "failed"]


def test_stale_tick_does_nothing(service, engineer):
    from deployments.engine import rollout_advance

    rollout = start(service, engineer)
    token = rollout.tick_seq
    rollout_advance(rollout_id=rollout.pk, token=token)
    after_first = Rollout.objects.get(pk=rollout.pk)
    assert after_first.status == RolloutStatus.PROGRESSING and after_first.tick_seq == token + 1
    rollout_advance(rollout_id=rollout.pk, token=token)  # redelivered: stale
    assert Rollout.objects.get(pk=rollout.pk).tick_seq == token + 1
