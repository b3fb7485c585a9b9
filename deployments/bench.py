"""`bench rollouts`: abort-to-stable latency and engine overhead per tick.

Both cluster backends run in this process: the simulated cluster (database) and the kubernetes
backend over loopback HTTP against kmock's KubernetesEmulator. The abort figure is the time
from calling `rollout_abort` to the cluster reporting 100 % stable traffic, with the tick the
abort enqueues run inline (the broker hop to a worker is not included). Each run happens in a
transaction rolled back at the end: nothing is enqueued or published, nothing is left behind.
"""

import statistics
import time

from django.conf import settings
from django.db import transaction

from deployments.cluster import cluster_backend
from deployments.cluster.simulated import SimulatedCluster
from deployments.engine import measure_tick, rollout_advance
from deployments.models import Rollout, Service
from deployments.services import rollout_abort, rollout_start

FAST = {"interval_seconds": 0.2, "samples_per_step": 1, "failure_limit": 1}
BENCH_NS = "bench-rollouts"


class _Fixed:
    """A steady healthy reading for the emulator runs (no Prometheus here)."""

    def read(self, service, version):
        from deployments.metrics.base import Reading

        return Reading(
            request_rate=50, error_rate=0.4, p99_ms=150, cpu_percent=30, memory_percent=40
        )


def _run_one(name: str, cluster, metrics, *, ticks: list, on_tick=None) -> float:
    """Start a rollout, tick it until the canary has traffic, abort; seconds to 100 % stable.

    All in one transaction rolled back at the end: nothing enqueued, published or left behind.
    """
    with transaction.atomic():
        service = Service.objects.create(
            name=name, namespace=BENCH_NS, image="bench/app", replicas=4
        )
        rollout = rollout_start(service=service, image_tag="v2", by="bench", analysis=FAST)
        deadline = time.monotonic() + 30
        while cluster.get_canary_weight(service) == 0:
            if time.monotonic() > deadline:
                raise RuntimeError("canary never received traffic")
            ticks.append(measure_tick(rollout.pk, cluster=cluster, metrics=metrics))
            if on_tick:
                on_tick(name)
        started = time.perf_counter()
        rollout_abort(rollout=rollout, by="bench", reason="bench")
        rollout_advance(rollout_id=rollout.pk, cluster=cluster, metrics=metrics)
        if cluster.get_canary_weight(service) != 0:
            raise RuntimeError("abort did not move traffic to stable")
        elapsed = time.perf_counter() - started
        if Rollout.objects.get(pk=rollout.pk).status != "aborted":
            raise RuntimeError("abort did not finish the rollout")
        transaction.set_rollback(True)
    return elapsed


def _p95(values: list[float]) -> float:
    return (
        statistics.quantiles(values, n=20, method="inclusive")[-1]
        if len(values) >= 2
        else values[0]
    )


def bench_rollouts(stdout, *, quick: bool = False) -> None:
    from deployments.cluster.emulator import Emulator
    from deployments.metrics.simulated import SimulatedMetrics

    runs = 5 if quick else 30
    saved = settings.SIM_CLUSTER_READY_SECONDS, settings.KUBERNETES_API_URL
    settings.SIM_CLUSTER_READY_SECONDS = 0
    results = {}
    ticks = {"simulated": [], "kubernetes": []}
    try:
        sim = SimulatedCluster(ready_seconds=0)
        metrics = SimulatedMetrics(sim)
        times = [
            _run_one(f"bench-sim-{i}", sim, metrics, ticks=ticks["simulated"]) for i in range(runs)
        ]
        results["simulated"] = times

        emulator = Emulator()
        try:
            settings.KUBERNETES_API_URL = emulator.url
            k8s = cluster_backend("kubernetes")

            def controller(name):
                for version in ("stable", "canary"):
                    emulator.mark_ready(BENCH_NS, f"{name}-{version}")

            times = [
                _run_one(
                    f"bench-k8s-{i}", k8s, _Fixed(), ticks=ticks["kubernetes"], on_tick=controller
                )
                for i in range(runs)
            ]
            results["kubernetes"] = times
        finally:
            emulator.close()
    finally:
        settings.SIM_CLUSTER_READY_SECONDS, settings.KUBERNETES_API_URL = saved

    for name, times in results.items():
        ms = [t * 1000 for t in times]
        stdout.write(
            f"abort → 100% stable, {name}: p50 {statistics.median(ms):.1f} ms, p95 {_p95(ms):.1f} ms, "
            f"max {max(ms):.1f} ms over {len(ms)} rollouts (goal: p95 < 1000 ms)"
        )
    ratios = {}
    for name, rows in ticks.items():
        total = sum(t for t, _ in rows)
        cluster = sum(c for _, c in rows)
        ratios[name] = (total - cluster) / cluster if cluster else float("nan")
        stdout.write(
            f"tick, {name}: {len(rows)} ticks, mean {total / len(rows) * 1000:.1f} ms, "
            f"of which cluster calls {cluster / len(rows) * 1000:.1f} ms; engine overhead "
            f"{(total - cluster) / len(rows) * 1000:.1f} ms per tick"
        )
    p95_sim = _p95([t * 1000 for t in results["simulated"]])
    p95_k8s = _p95([t * 1000 for t in results["kubernetes"]])
    stdout.write(
        f"rollouts: abort to 100% stable p95 {p95_sim:.1f} ms simulated, {p95_k8s:.1f} ms kubernetes "
        f"emulator, ratio {ratios['kubernetes']:.2f} vs cluster calls per tick (engine overhead, emulator)"
    )


AREAS = {"rollouts": bench_rollouts}
