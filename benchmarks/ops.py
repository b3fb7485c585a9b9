"""`bench ops`: /metrics render time with every series populated, and the time from an
Alertmanager webhook to 100% of traffic on stable (the goal is under 2 s).

Runs in a scratch metrics directory and on its own services (removed afterwards), with a
real Celery worker (threads) on the configured broker, so a running console is not disturbed.
"""

import os
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime

from django.test import Client, override_settings

from benchmarks.harness import celery_worker_running

FAST_ENGINE = {
    "SIM_CLUSTER_READY_SECONDS": 0.2,
    "ROLLOUT_POLL_SECONDS": 0.1,
    "ROLLOUT_READY_TIMEOUT_SECONDS": 30,
}
GOAL_SECONDS = 2.0


def _populate_process_metrics(n_views: int) -> None:
    from operations import exporter

    for i in range(n_views):
        for method in ("GET", "POST"):
            for status in ("200", "302", "400", "404", "500"):
                exporter.HTTP_REQUESTS.labels(method, f"bench:view{i}", status).inc()
            for seconds in (0.004, 0.03, 0.2, 1.5):
                exporter.HTTP_LATENCY.labels(method, f"bench:view{i}").observe(seconds)
    for i in range(n_views // 4):
        for outcome in ("succeeded", "failed", "retried"):
            exporter.CELERY_TASKS.labels(f"bench.task{i}", outcome).inc()
        exporter.CELERY_TASK_DURATION.labels(f"bench.task{i}").observe(0.7)


def _full_snapshot() -> dict:
    """A business snapshot with every label combination of the catalog."""
    from analytics.catalog import AI_SERVICES, BOOK_TYPES, SIGNUP_SOURCES, TIERS, VIDEO_STYLES
    from operations.kpis import (
        PROCESSING_BUCKETS,
        VIDEO_DURATION_BANDS,
        VIDEO_DURATION_LONGEST,
    )

    bands = [label for label, _ in VIDEO_DURATION_BANDS] + [VIDEO_DURATION_LONGEST]
    return {
        "computed_at": time.time(),
        "processing_buckets": list(PROCESSING_BUCKETS),
        "processing": [
            {
                "user_tier": t,
                "book_type": b,
                "video_duration": d,
                "count": 100,
                "sum": 30000.0,
                "buckets": list(range(10, 10 + 10 * len(PROCESSING_BUCKETS), 10)),
            }
            for t in TIERS
            for b in BOOK_TYPES
            for d in bands
        ],
        "ai_cost": [
            {"ai_service": s, "user_tier": t, "value": 12.5} for s in AI_SERVICES for t in TIERS
        ],
        "satisfaction": [
            {"user_tier": t, "video_style": v, "value": 7.5} for t in TIERS for v in VIDEO_STYLES
        ],
        "conversion": [{"signup_source": s, "value": 0.1} for s in SIGNUP_SOURCES],
    }


def bench_metrics_render(stdout, *, quick: bool, path: str) -> float:
    from operations import exporter

    class Snapshot:
        def collect(self):
            yield from exporter.business_metric_families(snapshot)

    snapshot = _full_snapshot()
    _populate_process_metrics(40 if quick else 120)
    collectors = [exporter.QueueLengthCollector(), exporter.RolloutStatusCollector(), Snapshot()]
    body = exporter.render(path=path, collectors=collectors)
    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    times = []
    for _ in range(5 if quick else 20):
        started = time.perf_counter()
        exporter.render(path=path, collectors=collectors)
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    stdout.write(
        f"/metrics render: median {median * 1000:.1f} ms for {series} series "
        f"({len(body) / 1024:.0f} KiB), {len(times)} renders"
    )
    return median


def _running_rollout(engineer_label: str):
    from deployments.cluster.simulated import SimulatedCluster
    from deployments.models import Service
    from deployments.services import rollout_start

    service = Service.objects.create(
        name=f"bench-ops-{uuid.uuid4().hex[:8]}",
        namespace="book2video-bench",
        image="registry.book2video.test/bench",
        replicas=2,
    )
    rollout = rollout_start(
        service=service,
        image_tag="v2",
        by=engineer_label,
        analysis={"interval_seconds": 60, "samples_per_step": 50, "failure_limit": 50},
    )
    cluster = SimulatedCluster()
    deadline = time.monotonic() + 30
    while cluster.get_canary_weight(service) == 0:
        if time.monotonic() > deadline:
            raise RuntimeError("the bench rollout never reached its first canary step")
        time.sleep(0.02)
    return service, rollout


def _seconds_to_stable(service, trigger) -> float:
    from deployments.cluster.simulated import SimulatedCluster

    cluster = SimulatedCluster()
    started = time.perf_counter()
    trigger()
    while cluster.get_canary_weight(service) != 0:
        if time.perf_counter() - started > 30:
            raise RuntimeError("traffic did not return to stable within 30 s")
        time.sleep(0.005)
    return time.perf_counter() - started


def _webhook_body(service_name: str) -> dict:
    return {
        "version": "4",
        "status": "firing",
        "receiver": "book2video-console",
        "alerts": [
            {
                "status": "firing",
                "labels": {
                    "alertname": "HighErrorRate",
                    "service": service_name,
                    "severity": "critical",
                },
                "annotations": {"summary": "bench"},
                "startsAt": datetime.now(UTC).isoformat(),
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": uuid.uuid4().hex[:16],
            }
        ],
    }


def bench_alert_to_stable(stdout, *, quick: bool) -> tuple[float, float]:
    from deployments.models import Rollout, Service
    from deployments.services import rollout_abort
    from operations.models import Alert

    token = uuid.uuid4().hex
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    runs = 3 if quick else 10
    webhook, button, made = [], [], []
    with (
        override_settings(ALERT_WEBHOOK_TOKEN=token, **FAST_ENGINE),
        celery_worker_running(),
    ):
        try:
            for _ in range(runs):
                service, _rollout = _running_rollout("bench")
                made.append(service.pk)
                body = _webhook_body(service.name)

                def post(body=body):
                    response = client.post("/api/alerts/", body, content_type="application/json")
                    assert response.status_code == 200, response.content

                webhook.append(_seconds_to_stable(service, post))
                service, rollout = _running_rollout("bench")
                made.append(service.pk)
                button.append(
                    _seconds_to_stable(
                        service,
                        lambda rollout=rollout: rollout_abort(
                            rollout=rollout, by="bench", reason="bench"
                        ),
                    )
                )
        finally:
            names = list(Service.objects.filter(pk__in=made).values_list("name", flat=True))
            Alert.objects.filter(labels__service__in=names).delete()
            Rollout.objects.filter(service_id__in=made).delete()
            Service.objects.filter(pk__in=made).delete()
    stdout.write(
        f"alert webhook → 100% stable: median {statistics.median(webhook) * 1000:.0f} ms, "
        f"max {max(webhook) * 1000:.0f} ms over {runs} rollouts (goal {GOAL_SECONDS:.0f} s)"
    )
    stdout.write(
        f"Abort button (rollout_abort) → 100% stable: median "
        f"{statistics.median(button) * 1000:.0f} ms, max {max(button) * 1000:.0f} ms"
    )
    return statistics.median(webhook), statistics.median(button)


def bench_ops(stdout, *, quick: bool = False) -> None:
    from core.embedded import ensure_embedded_redis

    ensure_embedded_redis()
    scratch = tempfile.mkdtemp(prefix="bench-ops-metrics-")
    # This process's metric files go to the scratch directory, not the console's.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = scratch
    bench_metrics_render(stdout, quick=quick, path=scratch)
    webhook, button = bench_alert_to_stable(stdout, quick=quick)
    verdict = "within" if webhook < GOAL_SECONDS else "OVER"
    stdout.write(
        f"ops: alert webhook to 100% stable in {webhook * 1000:.0f} ms ({verdict} the 2 s goal), "
        f"ratio {webhook / button:.2f} vs the Abort button path ({button * 1000:.0f} ms)"
    )
