"""Fixtures of the deployments tests: fast engine timings, services, a tick driver."""

import time

import pytest

FAST_ANALYSIS = {"interval_seconds": 0.3, "samples_per_step": 2, "failure_limit": 2}


@pytest.fixture(autouse=True)
def fast_rollouts(settings):
    """Engine and simulated-cluster timings in tenths of seconds, so a rollout takes seconds."""
    settings.SIM_CLUSTER_READY_SECONDS = 0.2
    settings.ROLLOUT_POLL_SECONDS = 0.1
    settings.ROLLOUT_READY_TIMEOUT_SECONDS = 30
    settings.ROLLOUT_STUCK_AFTER_SECONDS = 1
    settings.KUBERNETES_RETRY_BACKOFF_SECONDS = 0.01


@pytest.fixture
def service(db):
    from deployments.tests.factories import ServiceFactory

    return ServiceFactory(name="api-gateway", replicas=4)


@pytest.fixture
def drive():
    """Run ticks in this thread (no worker) until the rollout finishes or pauses for a person.

    `drive(rollout, until=callable)` sleeps for the planned delay between ticks.
    """
    from deployments.engine import rollout_advance
    from deployments.models import Rollout

    def run(rollout, *, cluster=None, metrics=None, until=None, timeout=30.0, between=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rollout = Rollout.objects.get(pk=rollout.pk)
            if rollout.is_finished or (until and until(rollout)):
                return rollout
            if rollout.next_tick_at is None:
                return rollout
            from django.utils import timezone

            wait = (rollout.next_tick_at - timezone.now()).total_seconds()
            if wait > 0:
                time.sleep(min(wait, 1.0))
            rollout_advance(rollout_id=rollout.pk, cluster=cluster, metrics=metrics)
            if between:
                between(Rollout.objects.get(pk=rollout.pk))
        raise AssertionError(
            f"rollout {rollout.pk} did not settle in {timeout} s: {rollout.status}"
        )

    return run


def wait_for(predicate, timeout=30.0, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")


@pytest.fixture
def k8s(settings):
    from testing.kubernetes_emulator import Emulator

    emulator = Emulator()
    settings.KUBERNETES_API_URL = emulator.url
    settings.KUBERNETES_RETRIES = 2
    yield emulator
    emulator.close()
