"""Fixtures of the experiments tests: running experiments and events written to the store."""

import datetime as dt
import json
import uuid

import pytest
from django.utils import timezone

from analytics.catalog import Event
from experiments.assignment import running_experiments
from experiments.models import Experiment
from experiments.tests.factories import ExperimentFactory


@pytest.fixture(autouse=True)
def _fresh_assignment_cache():
    from core.auth import ApiKeyAuthentication

    running_experiments.invalidate()
    ApiKeyAuthentication.forget()
    yield
    running_experiments.invalidate()


@pytest.fixture
def running(db):
    """make running experiment: started `days_ago` days ago, status running."""

    def make(days_ago: float = 10, **kwargs) -> Experiment:
        experiment = ExperimentFactory(**kwargs)
        experiment.status = Experiment.Status.RUNNING
        experiment.started_at = timezone.now() - dt.timedelta(days=days_ago)
        experiment.save()
        return experiment

    return make


def event_row(event: str, user_id: str, at: dt.datetime, properties: dict, uid=None) -> dict:
    return {
        "uuid": str(uid or uuid.uuid4()),
        "event": str(event),
        "user_id": user_id,
        "timestamp": at,
        "properties": json.dumps(properties),
    }


def exposure_row(key: str, user_id: str, variant: str, at: dt.datetime, uid=None) -> dict:
    return event_row(
        Event.EXPERIMENT_ASSIGNMENT,
        user_id,
        at,
        {"experiment_id": key, "variant": variant},
        uid,
    )
