"""The kubernetes backend over real HTTP against kmock's KubernetesEmulator on loopback.

The emulator runs no controllers, so the tests mark Deployments ready themselves
(`k8s.mark_ready`), as the Deployment controller would. Metrics come from a fixed reading
(no Prometheus here; the Prometheus backend has its own tests).
"""

import pytest

from deployments.cluster import ClusterRefused, ClusterUnavailable
from deployments.cluster.kubernetes import KubernetesCluster
from deployments.engine import rollout_advance
from deployments.metrics.base import Reading
from deployments.models import Rollout, RolloutStatus
from deployments.services import rollout_abort, rollout_start
from deployments.tests.conftest import FAST_ANALYSIS

QUICK = {**FAST_ANALYSIS, "interval_seconds": 0.2, "samples_per_step": 1}

pytestmark = pytest.mark.django_db
NS = "book2video-test"
ISTIO = "networking.istio.io"


class FixedMetrics:
    def __init__(self, canary_error=0.4):
        self.canary_error = canary_error

    def read(self, service, version):
        error = self.canary_error if version == "canary" else 0.4
        return Reading(
            request_rate=50, error_rate=error, p99_ms=150, cpu_percent=30, memory_percent=40
        )


def weights(k8s, name="api-gateway"):
    vs = k8s.get("virtualservices", NS, name, group=ISTIO)
    return {r["destination"]["subset"]: r["weight"] for r in vs["spec"]["http"][0]["route"]}


def controller(k8s):
    def mark(rollout):
        for name in ("api-gateway-stable", "api-gateway-canary"):
            k8s.mark_ready(NS, name)

    return mark


def test_rollout_on_kubernetes_objects_at_each_step_and_promotion(k8s, service, engineer, drive):
    cluster = KubernetesCluster.from_settings()
    seen = []

    def step(rollout):
        controller(k8s)(rollout)
        canary = k8s.get("deployments", NS, "api-gateway-canary")
        seen.append((weights(k8s), canary and canary["spec"]["replicas"]))

    rollout = rollout_start(service=service, image_tag="v2", by=engineer, analysis=QUICK)
    rollout = drive(rollout, cluster=cluster, metrics=FixedMetrics(), between=step)
    assert rollout.status == RolloutStatus.PROMOTED
    distinct = []
    for item in seen:
        if not distinct or distinct[-1] != item:
            distinct.append(item)
    # Canary pods max(1, ceil(4 * w / 100)); weight moves only once they are ready.
    assert distinct == [
        ({"stable": 100, "canary": 0}, None),
        ({"stable": 100, "canary": 0}, 1),
        ({"stable": 90, "canary": 10}, 1),
        ({"stable": 75, "canary": 25}, 1),
        ({"stable": 75, "canary": 25}, 2),
        ({"stable": 50, "canary": 50}, 2),
        ({"stable": 50, "canary": 50}, 4),
        ({"stable": 0, "canary": 100}, 4),
        ({"stable": 100, "canary": 0}, None),
    ]
    stable = k8s.get("deployments", NS, "api-gateway-stable")
    container = stable["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.book2video.test/api-gateway:v2"
    assert stable["metadata"]["labels"] == {
        "app": "api-gateway",
        "version": "stable",
        "rollout-id": str(rollout.pk),
    }
    assert stable["metadata"]["annotations"]["book2video.io/deployed-by"] == "erin"
    assert stable["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
    }
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "2000m", "memory": "4Gi"},
    }
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": 8000}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": 8000}
    assert container["securityContext"] == {
        "runAsNonRoot": True,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    assert k8s.get("deployments", NS, "api-gateway-canary") is None
    dr = k8s.get("destinationrules", NS, "api-gateway", group=ISTIO)
    assert dr["spec"]["subsets"] == [
        {"name": "stable", "labels": {"version": "stable"}},
        {"name": "canary", "labels": {"version": "canary"}},
    ]
    vs = k8s.get("virtualservices", NS, "api-gateway", group=ISTIO)
    assert vs["spec"]["hosts"] == ["api-gateway"]
    assert {r["destination"]["host"] for r in vs["spec"]["http"][0]["route"]} == {
        "api-gateway.book2video-test.svc.cluster.local"
    }
    methods = {str(r.method).split(".")[-1].upper() for r in k8s.requests()}
    assert "PUT" not in methods and "PATCH" in methods


def test_failed_analysis_rolls_back_traffic_first_then_canary_to_zero(
    k8s, service, engineer, drive
):
    cluster = KubernetesCluster.from_settings()
    rollout = rollout_start(service=service, image_tag="v2", by=engineer, analysis=QUICK)
    rollout = drive(
        rollout, cluster=cluster, metrics=FixedMetrics(canary_error=30.0), between=controller(k8s)
    )
    assert rollout.status == RolloutStatus.ROLLED_BACK
    assert weights(k8s) == {"stable": 100, "canary": 0}
    assert k8s.get("deployments", NS, "api-gateway-canary")["spec"]["replicas"] == 0
    stable = k8s.get("deployments", NS, "api-gateway-stable")
    assert stable["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":v1")
    writes = [
        (r.resource.plural, r.name or "")
        for r in k8s.requests()
        if str(r.method).endswith(("PATCH", "patch"))
    ]
    last_vs = max(i for i, w in enumerate(writes) if w[0] == "virtualservices")
    scale = max(
        i for i, w in enumerate(writes) if w[0] == "deployments" and w[1] == "api-gateway-canary"
    )
    assert last_vs < scale, writes


def test_abort_mid_step_on_kubernetes(k8s, service, engineer, drive):
    cluster = KubernetesCluster.from_settings()
    rollout = rollout_start(service=service, image_tag="v2", by=engineer, analysis=QUICK)
    rollout = drive(
        rollout,
        cluster=cluster,
        metrics=FixedMetrics(),
        between=controller(k8s),
        until=lambda r: r.current_weight == 25,
    )
    assert weights(k8s) == {"stable": 75, "canary": 25}
    rollout_abort(rollout=rollout, by=engineer, reason="manual")
    rollout_advance(rollout_id=rollout.pk, cluster=cluster, metrics=FixedMetrics())
    assert Rollout.objects.get(pk=rollout.pk).status == RolloutStatus.ABORTED
    assert weights(k8s) == {"stable": 100, "canary": 0}


def test_transient_errors_are_retried_then_reported(k8s, service):
    cluster = KubernetesCluster.from_settings()
    deployments = k8s.kmock.resource("apps", "v1", "deployments")
    k8s.emu["get", deployments][:2] << 503
    assert cluster.deployment_state(NS, "absent") is None  # two 503s, then the real 404


def test_persistent_throttling_is_unavailable_after_retries(k8s, service):
    cluster = KubernetesCluster.from_settings()
    k8s.emu["get", k8s.kmock.resource("apps", "v1", "deployments")][:5] << 429
    with pytest.raises(ClusterUnavailable, match="after 3 tries"):
        cluster.deployment_state(NS, "absent")


def test_refusal_gives_a_clear_reason(k8s, service):
    cluster = KubernetesCluster.from_settings()
    with pytest.raises(ClusterRefused, match="scale Deployment book2video-test/ghost to 2: 404"):
        cluster.scale_deployment(NS, "ghost", 2)


def test_scale_deployment_for_other_teams(k8s, service):
    cluster = KubernetesCluster.from_settings()
    cluster.ensure_stable(service)
    cluster.scale_deployment(NS, "api-gateway-stable", 7)
    assert cluster.get_deployment_replicas(NS, "api-gateway-stable") == 7
    assert cluster.get_deployment_replicas(NS, "nothing") is None
