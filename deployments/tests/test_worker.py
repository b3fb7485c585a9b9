"""End to end with a real Celery worker on the real broker and the simulated cluster."""

import threading

import pytest

from deployments.cluster.simulated import SimulatedCluster
from deployments.models import Rollout, RolloutStatus
from deployments.tests.conftest import FAST_ANALYSIS, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def eng(engineer, api_client_for):
    return api_client_for(engineer)


def start(eng, service, tag, **extra):
    r = eng.post(
        "/api/rollouts/",
        {"service": service.name, "image_tag": tag, "analysis": FAST_ANALYSIS, **extra},
        format="json",
    )
    assert r.status_code == 201, r.json()
    return r.json()["id"]


def status_of(rid):
    return Rollout.objects.get(pk=rid).status


def settled(rid, *statuses, timeout=40):
    return wait_for(lambda: status_of(rid) in statuses and status_of(rid), timeout=timeout)


def test_healthy_promoted_then_fault_rolled_back(celery_worker, eng, service):
    rid = start(eng, service, "v2")
    assert settled(rid, *Rollout.FINISHED_STATUSES) == RolloutStatus.PROMOTED
    detail = eng.get(f"/api/rollouts/{rid}/").json()
    assert detail["latest_samples"]["canary"]["error_rate"] < 5
    rid = start(eng, service, "v3-fault")
    assert settled(rid, *Rollout.FINISHED_STATUSES) == RolloutStatus.ROLLED_BACK
    cluster = SimulatedCluster()
    assert cluster.get_canary_weight(service) == 0
    assert cluster.get_deployment_replicas(service.namespace, "api-gateway-canary") == 0
    detail = eng.get(f"/api/rollouts/{rid}/").json()
    assert detail["current_weight"] == 0 and "error_rate" in detail["reason"]
    assert detail["latest_samples"]["canary"]["error_rate"] > 5
    service.refresh_from_db()
    assert service.stable_tag == "v2"


def test_abort_mid_step(celery_worker, eng, service):
    rid = start(eng, service, "v2")
    wait_for(lambda: Rollout.objects.get(pk=rid).current_weight >= 25)
    r = eng.post(f"/api/rollouts/{rid}/abort/", {"reason": "saw a bug"}, format="json")
    assert r.status_code == 200
    assert settled(rid, *Rollout.FINISHED_STATUSES, timeout=10) == RolloutStatus.ABORTED
    assert SimulatedCluster().get_canary_weight(service) == 0


def test_pause_and_resume(celery_worker, eng, service):
    rid = start(eng, service, "v2")
    wait_for(lambda: Rollout.objects.get(pk=rid).current_weight >= 10)
    assert eng.post(f"/api/rollouts/{rid}/pause/").json()["status"] == "paused"
    weight = Rollout.objects.get(pk=rid).current_weight
    import time

    time.sleep(1.5)  # several analysis intervals: nothing moves while paused
    held = Rollout.objects.get(pk=rid)
    assert held.status == "paused" and held.current_weight == weight
    assert eng.post(f"/api/rollouts/{rid}/resume/").json()["status"] == "progressing"
    assert settled(rid, *Rollout.FINISHED_STATUSES) == RolloutStatus.PROMOTED


def test_no_metrics_pauses_not_promotes(celery_worker, eng, service):
    rid = start(eng, service, "v2-nodata")
    assert settled(rid, "paused", *Rollout.FINISHED_STATUSES) == "paused"
    assert Rollout.objects.get(pk=rid).reason.startswith("inconclusive (error_rate")


def test_killed_worker_mid_rollout_resumes(transactional_db, eng, service, settings):
    """The worker stops mid-rollout and its pending tick message is lost (purged), as when a
    worker is killed before the broker redelivers; the beat safety net resumes the rollout."""
    from config.celery import app
    from core.queues import Queue
    from deployments.tasks import resume_stuck_rollouts
    from testing.servers import celery_worker_running

    app.conf.task_always_eager = False
    with celery_worker_running(concurrency=1, queues=[Queue.ROLLOUTS], shutdown_timeout=10):
        rid = start(eng, service, "v2")
        wait_for(lambda: Rollout.objects.get(pk=rid).current_weight >= 25)
    app.control.purge()
    frozen = Rollout.objects.get(pk=rid)
    assert frozen.status == "progressing"
    import time

    time.sleep(settings.ROLLOUT_STUCK_AFTER_SECONDS + 0.5)
    with celery_worker_running(concurrency=1, queues=[Queue.ROLLOUTS], shutdown_timeout=10):
        resume_stuck_rollouts.delay()
        assert settled(rid, *Rollout.FINISHED_STATUSES) == RolloutStatus.PROMOTED
    kinds = list(Rollout.objects.get(pk=rid).events.values_list("kind", flat=True))
    assert "resume_stuck" in kinds


def test_concurrent_starts_one_201_one_409(transactional_db, engineer, api_client_for, service):
    barrier = threading.Barrier(2)
    codes = []

    def post(tag):
        client = api_client_for(engineer)
        barrier.wait()
        codes.append(
            client.post(
                "/api/rollouts/", {"service": service.name, "image_tag": tag}, format="json"
            ).status_code
        )

    threads = [threading.Thread(target=post, args=(t,)) for t in ("v2", "v3")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [201, 409]
    assert Rollout.objects.filter(service=service).count() == 1
