"""Fixtures of the experiments tests: running experiments and events written to the store."""

import datetime as dt
import json
import uuid

import pytest

from analytics.catalog import Event
from experiments.assignment import running_experiments


@pytest.fixture(autouse=True)
def _fresh_assignment_cache():
    from core.auth import ApiKeyAuthentication

    running_experiments.invalidate()
    ApiKeyAuthentication.forget()
    yield
    running_experiments.invalidate()


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
