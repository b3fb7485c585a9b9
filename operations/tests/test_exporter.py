"""`/metrics`: multiprocess collection, request and task metrics, queue lengths, the business
metrics cross-checked against pandas, and the bearer token."""

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from core.queues import Queue
from core.redis import redis_client
from core.tasks import heartbeat
from operations import exporter, kpis


def scrape(client, **headers) -> dict[tuple, float]:
    """{(sample name, sorted labels): value} of one /metrics answer."""
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_prometheus_client_runs_in_multiprocess_mode_under_var_dir():
    import prometheus_client.values

    assert settings.PROMETHEUS_MULTIPROC_DIR.is_relative_to(settings.VAR_DIR)
    assert "MultiProcessValue" in prometheus_client.values.ValueClass.__qualname__


@pytest.mark.django_db
def test_http_requests_are_counted_by_view_and_status(client):
    before = scrape(client)
    for _ in range(3):
        assert client.get("/health").status_code == 200
    client.get("/no-such-page/")
    after = scrape(client)
    key = {"method": "GET", "view": "health", "status": "200"}
    assert value(after, "book2video_http_requests_total", **key) - value(
        before, "book2video_http_requests_total", **key
    ) == pytest.approx(3)
    lost = {"method": "GET", "view": "unresolved", "status": "302"}  # anonymous → login
    assert value(after, "book2video_http_requests_total", **lost) > value(
        before, "book2video_http_requests_total", **lost
    )
    count = "book2video_http_request_duration_seconds_count"
    assert value(after, count, method="GET", view="health") - value(
        before, count, method="GET", view="health"
    ) == pytest.approx(3)


PROCESS_SCRIPT = """
import django, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()
from operations.exporter import CELERY_TASKS
CELERY_TASKS.labels("test.other_process", "succeeded").inc(7)
"""


@pytest.mark.django_db
def test_values_written_by_another_process_are_summed(client):
    # A separate Python process (like a worker) writes its counter files; this process serves them.
    before = value(
        scrape(client),
        "book2video_celery_tasks_total",
        task="test.other_process",
        outcome="succeeded",
    )
    env = {"PYTEST_VERSION": "1", "PATH": "/usr/bin:/bin"}
    if "VAR_DIR" in os.environ:  # the same metrics directory as this process's
        env["VAR_DIR"] = os.environ["VAR_DIR"]
    for _ in range(2):
        subprocess.run([sys.executable, "-c", PROCESS_SCRIPT], check=True, env=env, timeout=60)
    after = value(
        scrape(client),
        "book2video_celery_tasks_total",
        task="test.other_process",
        outcome="succeeded",
    )
    assert after - before == pytest.approx(14)


@pytest.mark.slow
def test_real_worker_task_counts_and_durations(celery_worker, client):
    before = scrape(client)
    redis_client().delete("heartbeat:metrics")
    heartbeat.apply_async(args=["metrics"], queue=Queue.DEFAULT)
    deadline = time.monotonic() + 20
    labels = {"task": "core.heartbeat", "outcome": "succeeded"}
    while time.monotonic() < deadline:
        after = scrape(client)
        if value(after, "book2video_celery_tasks_total", **labels) > value(
            before, "book2video_celery_tasks_total", **labels
        ):
            break
        time.sleep(0.1)
    assert value(after, "book2video_celery_tasks_total", **labels) - value(
        before, "book2video_celery_tasks_total", **labels
    ) == pytest.approx(1)
    # A scrape reads the counter and histogram files one after the other, so the scrape that
    # first saw the count may have read the histogram just before the task observed it: the
    # duration (observed before the count) is certain to be there in the next scrape.
    after = scrape(client)
    count = "book2video_celery_task_duration_seconds_count"
    assert value(after, count, task="core.heartbeat") > value(before, count, task="core.heartbeat")


def test_failed_and_retried_task_outcomes():
    class FakeTask:  # the signal's sender; only its name is read
        name = "test.outcomes"

    for state in ("FAILURE", "RETRY"):
        exporter.on_task_prerun(task_id=state)
        exporter.on_task_postrun(task_id=state, task=FakeTask, state=state)
    text = exporter.render().decode()
    assert 'book2video_celery_tasks_total{outcome="failed",task="test.outcomes"}' in text
    assert 'book2video_celery_tasks_total{outcome="retried",task="test.outcomes"}' in text


@pytest.mark.django_db
def test_queue_length_reads_the_broker(client):
    redis = redis_client()
    redis.delete(Queue.ML.value)
    try:
        for _ in range(3):
            heartbeat.apply_async(args=["queued"], queue=Queue.ML)  # no worker: they wait
        samples = scrape(client)
        assert value(samples, "book2video_queue_length", queue="ml") == 3
        assert {q.value for q in Queue} <= {
            dict(labels)["queue"] for name, labels in samples if name == "book2video_queue_length"
        }
    finally:
        redis.delete(Queue.ML.value)


@pytest.mark.django_db
def test_token_protects_metrics(client, settings):
    settings.METRICS_TOKEN = "s3cret-metrics"
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 401 and wrong.json()["error"] == "not_authenticated"
    assert scrape(client, HTTP_AUTHORIZATION="Bearer s3cret-metrics")


# --- business metrics ------------------------------------------------------------------------


def _events(n_users: int = 300, seed: int = 7) -> list[dict]:
    rng = np.random.default_rng(seed)
    now = datetime.now(UTC)
    tiers, styles = ["free", "basic", "pro"], ["animated", "cinematic", "slideshow"]
    rows = []

    def add(event: str, user: str, at: datetime, **props):
        rows.append(
            {
                "uuid": str(uuid.uuid4()),
                "event": event,
                "user_id": user,
                "timestamp": at,
                "properties": json.dumps(props),
            }
        )

    for i in range(n_users):
        user, tier = f"u{i}", tiers[i % 3]
        add(
            "signup",
            user,
            now - timedelta(days=40),
            signup_source=["organic", "ads", "referral"][i % 3],
            user_tier="free",
        )
        if rng.random() < 0.3 + 0.1 * (i % 3):
            add("subscription_started", user, now - timedelta(days=35), tier="pro", mrr=29.99)
        for _ in range(rng.integers(0, 4)):
            add(
                "video_completed",
                user,
                now - timedelta(days=float(rng.uniform(0, 60))),
                user_tier=tier,
                book_type=["fiction", "textbook"][int(rng.integers(0, 2))],
                processing_seconds=float(rng.gamma(2.0, 150.0)),
                video_duration_seconds=float(rng.choice([120.0, 300.0, 900.0, 1500.0])),
                ai_service=["openai", "anthropic"][int(rng.integers(0, 2))],
                ai_cost_dollars=round(float(rng.uniform(0.05, 3.0)), 4),
            )
        for _ in range(rng.integers(0, 3)):
            add(
                "satisfaction_score",
                user,
                now - timedelta(days=float(rng.uniform(0, 60))),  # half outside the 30-day window
                user_tier=tier,
                score=int(rng.integers(1, 11)),
                video_style=styles[int(rng.integers(0, 3))],
            )
    return rows


def _frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    props = pd.json_normalize(frame["properties"].map(json.loads))
    return pd.concat([frame.drop(columns="properties"), props], axis=1)


@pytest.mark.django_db
def test_business_metrics_match_an_independent_pandas_computation(analytics_store, client):
    rows = _events()
    analytics_store.insert("events", rows)
    kpis.business_metrics_refresh()
    samples = scrape(client)
    frame = _frame(rows)

    done = frame[frame.event == "video_completed"].copy()
    done["video_duration"] = pd.cut(
        done.video_duration_seconds,
        [-np.inf, 300, 1200, np.inf],
        right=False,
        labels=["under_5m", "5m_to_20m", "over_20m"],
    ).astype(str)
    checked = 0
    for (tier, book, band), group in done.groupby(["user_tier", "book_type", "video_duration"]):
        labels = {"user_tier": tier, "book_type": book, "video_duration": band}
        name = "book2video_processing_duration_seconds"
        assert value(samples, f"{name}_count", **labels) == len(group)
        assert value(samples, f"{name}_sum", **labels) == pytest.approx(
            group.processing_seconds.sum()
        )
        for bound in kpis.PROCESSING_BUCKETS:
            assert value(samples, f"{name}_bucket", **labels, le=str(bound)) == (
                (group.processing_seconds <= bound).sum()
            )
        assert value(samples, f"{name}_bucket", **labels, le="+Inf") == len(group)
        checked += 1
    assert checked >= 12

    for (service, tier), group in done.groupby(["ai_service", "user_tier"]):
        assert value(
            samples, "book2video_ai_cost_dollars", ai_service=service, user_tier=tier
        ) == pytest.approx(group.ai_cost_dollars.sum())

    scores = frame[frame.event == "satisfaction_score"]
    recent = scores[scores.timestamp >= datetime.now(UTC) - timedelta(days=30)]
    means = recent.groupby(["user_tier", "video_style"]).score.mean()
    assert len(means) >= 6
    for (tier, style), mean in means.items():
        assert value(
            samples, "book2video_user_satisfaction_score", user_tier=tier, video_style=style
        ) == pytest.approx(mean)

    signups = frame[frame.event == "signup"]
    paid = set(frame[frame.event == "subscription_started"].user_id)
    rates = signups.assign(paid=signups.user_id.isin(paid)).groupby("signup_source").paid.mean()
    for source, rate in rates.items():
        assert value(samples, "book2video_conversion_rate", signup_source=source) == pytest.approx(
            rate
        )
    assert value(samples, "book2video_business_metrics_computed_timestamp_seconds") > 0


@pytest.mark.django_db
def test_business_metrics_task_is_scheduled_and_runs(analytics_store):
    from config.beat import beat_schedule
    from operations.tasks import refresh_business_metrics

    entry = beat_schedule()["refresh-business-metrics"]
    assert entry["task"] == refresh_business_metrics.name
    redis_client().delete(exporter.BUSINESS_METRICS_KEY)
    refresh_business_metrics.apply()
    snapshot = json.loads(redis_client().get(exporter.BUSINESS_METRICS_KEY))
    assert snapshot["processing"] == [] and snapshot["conversion"] == []


def test_worker_container_serves_its_task_metrics_on_its_own_port():
    # Kubernetes and compose run workers in pods without a web process (WORKER_METRICS_PORT).
    import socket
    import urllib.request

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    exporter.CELERY_TASKS.labels("test.worker_port", "succeeded").inc()
    server, thread = exporter.serve_worker_metrics(port)
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
    finally:
        server.shutdown()
        thread.join(5)
    text = body.decode()
    assert 'book2video_celery_tasks_total{outcome="succeeded",task="test.worker_port"}' in text
    assert "book2video_queue_length" not in text  # scrape-time series come from the web pods


def test_worker_metrics_port_asks_for_the_token(settings):
    import socket
    import urllib.error
    import urllib.request

    settings.METRICS_TOKEN = "worker-s3cret"
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server, thread = exporter.serve_worker_metrics(port)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=10)
        assert refused.value.code == 401
        wrong = urllib.request.Request(url, headers={"Authorization": "Bearer nope"})
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(wrong, timeout=10)
        right = urllib.request.Request(url, headers={"Authorization": "Bearer worker-s3cret"})
        assert b"book2video" in urllib.request.urlopen(right, timeout=10).read()
    finally:
        server.shutdown()
        thread.join(5)


@pytest.mark.django_db
def test_metrics_without_a_token_is_refused_in_production(client, settings):
    settings.METRICS_TOKEN = ""
    settings.DEMO_MODE = False  # what DEBUG=0 (config.settings.production) sets
    response = client.get("/metrics")
    assert response.status_code == 503
    assert response.json()["error"] == "not_configured"


@pytest.mark.django_db
def test_rollouts_by_status(client):
    from deployments.tests.factories import RolloutFactory

    RolloutFactory(status="promoted")
    RolloutFactory(status="promoted")
    RolloutFactory(status="aborted")
    samples = scrape(client)
    assert value(samples, "book2video_rollouts", status="promoted") == 2
    assert value(samples, "book2video_rollouts", status="aborted") == 1
    assert ("book2video_rollouts", (("status", "progressing"),)) in samples


def test_run_empties_the_metrics_directory_before_starting_processes(settings, tmp_path):
    from core.processes import reset_metrics_dir

    settings.PROMETHEUS_MULTIPROC_DIR = tmp_path
    (tmp_path / "counter_4242.db").write_bytes(b"stale")
    (tmp_path / "keep.txt").write_text("not a metrics file")
    reset_metrics_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
