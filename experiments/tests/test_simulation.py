"""The demo's simulated experiment traffic: deterministic, and never dated after `now`."""

import datetime as dt

import numpy as np

from analytics.catalog import Event
from experiments.simulation import Outcome, new_users, simulated_events


def _simulate(now: dt.datetime) -> list[dict]:
    rng = np.random.default_rng(5)
    return simulated_events(
        key="sim-test",
        seed="sim-test",
        variant_keys=["control", "treatment"],
        weights=[0.5, 0.5],
        audience=new_users(users=3000, start=now - dt.timedelta(days=2), days=2, rng=rng),
        outcomes=[Outcome("project_created", {"control": 0.3, "treatment": 0.4})],
        rng=rng,
        now=now,
    )


def test_no_simulated_event_lies_in_the_future():
    """Exposures run up to `now`; a repeated assignment 30 minutes later must not pass it."""
    now = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
    rows = _simulate(now)
    assignments = [r for r in rows if r["event"] == Event.EXPERIMENT_ASSIGNMENT]
    assert len({r["user_id"] for r in assignments}) < len(assignments)  # some assigned twice
    assert max(r["timestamp"] for r in rows) <= now
    again = _simulate(now)  # the same seed gives the same rows, uuids aside
    assert [{**r, "uuid": ""} for r in rows] == [{**r, "uuid": ""} for r in again]
