"""The hourly monitor: declared in the beat schedule, and run end to end by a real worker."""

import time

import pytest

from config.beat import beat_schedule
from core.queues import Queue
from experiments.models import Experiment
from experiments.tests.test_services import _traffic


def test_monitor_is_scheduled_hourly_on_the_analytics_queue():
    (entry,) = [
        e for e in beat_schedule().values() if e["task"] == "experiments.monitor_experiments"
    ]
    assert entry["schedule"] == 3600.0
    assert entry["options"]["queue"] == Queue.ANALYTICS


@pytest.mark.slow
def test_monitor_concludes_through_a_real_worker(celery_worker, running, analytics_store):
    from experiments.tasks import monitor_experiments

    decisive = running(days_ago=8, minimum_runtime_days=7)
    _traffic(decisive, control=(3000, 300), treatment=(3000, 450))
    young = running(days_ago=1, minimum_runtime_days=7)
    _traffic(young, control=(3000, 300), treatment=(3000, 450), prefix="y")

    monitor_experiments.delay()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        decisive.refresh_from_db()
        young.refresh_from_db()
        if decisive.status == Experiment.Status.CONCLUDED and young.results_computed_at:
            break
        time.sleep(0.2)
    assert decisive.status == Experiment.Status.CONCLUDED and decisive.winner.key == "treatment"
    assert young.status == Experiment.Status.RUNNING and young.results_computed_at is not None
