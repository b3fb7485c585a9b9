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
    assert rollout.reason.startswith("inconclusive (error_rate, p99_ms, cpu_percent")
    assert "no error_rate data for canary" in rollout.reason
    assert rollout.events.filter(kind="inconclusive").count() == 1
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


def test_going_back_within_the_window_is_a_fast_rollback(service, engineer, drive, settings):
    cluster = SimulatedCluster()
    promoted = drive(start(service, engineer))
    assert promoted.status == RolloutStatus.PROMOTED
    service.refresh_from_db()

    weights = []
    back = start(service, engineer, tag="v1")
    assert back.reverts_id == promoted.pk and back.steps == [{"weight": 100, "pause": None}]
    back = drive(back, between=lambda r: weights.append(cluster.get_canary_weight(service)))
    assert back.status == RolloutStatus.PROMOTED
    assert set(weights) == {0}  # no traffic ever went to a canary
    assert not MetricSample.objects.filter(rollout=back).exists()  # no analysis
    kinds = list(back.events.values_list("kind", flat=True))
    assert "fast_rollback" in kinds and "step" not in kinds
    service.refresh_from_db()
    assert service.stable_tag == "v1"
    stable = cluster.deployment_state(service.namespace, "api-gateway-stable")
    assert stable.image.endswith(":v1") and stable.replicas == 4
    assert cluster.deployment_state(service.namespace, "api-gateway-canary") is None


@pytest.mark.parametrize("case", ["outside_window", "disabled", "other_tag"])
def test_other_rollouts_get_the_full_analysis(service, engineer, drive, settings, case):
    from datetime import timedelta

    promoted = drive(start(service, engineer))
    service.refresh_from_db()
    if case == "outside_window":
        Rollout.objects.filter(pk=promoted.pk).update(
            finished_at=promoted.finished_at - timedelta(seconds=3601)
        )
    if case == "disabled":
        settings.ROLLOUT_FAST_ROLLBACK_SECONDS = 0
    rollout = start(service, engineer, tag="v3" if case == "other_tag" else "v1")
    assert rollout.reverts_id is None and len(rollout.steps) == 4


class ScriptedMetrics:
    """Readings from a script instead of the simulated cluster's random model, so the
    statistical judge sees known distributions: stable and canary draw from the same seeded
    generator, the canary's p99 multiplied by `p99_factor`."""

    def __init__(self, p99_factor=1.0):
        import numpy as np

        self.rng = np.random.default_rng(7)
        self.p99_factor = p99_factor

    def read(self, service, version):
        from deployments.metrics.base import Reading

        factor = self.p99_factor if version == "canary" else 1.0
        return Reading(
            request_rate=100.0,
            error_rate=float(self.rng.uniform(0.45, 0.55)),
            p99_ms=float(self.rng.normal(150, 5)) * factor,
            cpu_percent=float(self.rng.normal(30, 1)),
            memory_percent=float(self.rng.normal(40, 1)),
        )


STATISTICAL = {**FAST_ANALYSIS, "samples_per_step": 8, "judge": "statistical"}


def test_statistical_judge_passes_a_canary_like_stable(service, engineer, drive):
    rollout = rollout_start(service=service, image_tag="v2", by=engineer, analysis=STATISTICAL)
    rollout = drive(rollout, metrics=ScriptedMetrics(), timeout=60)
    assert rollout.status == RolloutStatus.PROMOTED
    passes = rollout.events.filter(kind="statistical_pass")
    assert passes.count() == 3  # steps at 10, 25 and 50 %; at 100 % nothing to compare with
    assert all(e.data["score"] == 100 for e in passes)


def test_simulated_samples_within_one_second_are_separate_draws(service, engineer, drive):
    """Samples 0.3 s apart used to repeat one draw per second, and the statistical judge read
    the copies as a real difference between two healthy versions (a flaky rollback)."""
    import datetime as dt

    cluster = SimulatedCluster()
    rollout = rollout_start(service=service, image_tag="v2", by=engineer, analysis=STATISTICAL)
    drive(rollout, cluster=cluster, until=lambda r: r.phase == "analyze")
    from django.utils import timezone

    at = timezone.now().replace(microsecond=0) + dt.timedelta(seconds=5)  # pods ready by then
    draws = [
        cluster.sample(service, "canary", at=at + dt.timedelta(milliseconds=300 * i))
        for i in range(3)
    ]
    assert len({d["error_rate"] for d in draws}) == 3
    assert cluster.sample(service, "canary", at=at) == draws[0]  # a replay repeats its numbers


@pytest.mark.parametrize(
    "scores,status",
    [({}, RolloutStatus.PAUSED), ({"marginal_score": 80}, RolloutStatus.ROLLED_BACK)],
)
def test_statistical_judge_catches_what_the_limits_let_through(
    service, engineer, drive, scores, status
):
    # p99 +40 %: under the 800 ms limit, and the +25 % comparison with stable is off.
    analysis = {**STATISTICAL, "compare_to_stable": False, **scores}
    rollout = rollout_start(service=service, image_tag="v2", by=engineer, analysis=analysis)
    rollout = drive(
        rollout, metrics=ScriptedMetrics(p99_factor=1.4), until=lambda r: r.status == "paused"
    )
    assert rollout.status == status
    assert rollout.events.filter(kind="step").count() == 1  # caught at the first step (10 %)
    statistical = rollout.last_judgement["statistical"]
    assert statistical["score"] == 75.0  # 3 of 4 equally weighted metrics pass
    p99 = next(m for m in statistical["metrics"] if m["metric"] == "p99_ms")
    assert p99["classification"] == "high" and p99["effect_size"] == pytest.approx(1.4, rel=0.05)
    assert "p99_ms high" in rollout.reason
