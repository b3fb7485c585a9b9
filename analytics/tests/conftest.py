"""Fixtures of the analytics tests: an empty event buffer next to the emptied store; a small
deterministic generated history with a known signal for the insight models."""

import datetime as dt

import pytest


@pytest.fixture
def event_buffer(analytics_store):
    """The Redis event buffer emptied (and the store emptied by analytics_store)."""
    from analytics.events.buffer import buffer_clear

    buffer_clear()
    yield
    buffer_clear()


IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
DESKTOP = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)


def make_event(i: int = 0, **overrides) -> dict:
    event = {
        "event": "video_rendered",
        "user_id": f"user-{i % 7}",
        "timestamp": f"2026-03-{1 + i % 28:02d}T{i % 24:02d}:15:00+00:00",
        "properties": {"video_style": "cinematic", "n": i},
    }
    event.update(overrides)
    return event


ML_END = dt.datetime(2026, 6, 30, 23, 0, tzinfo=dt.UTC)


def _history(users: int):
    from analytics.generator import GenerationSpec, generate
    from analytics.store import store

    db = store()

    def clear():
        for table in ("events", "users", "user_insights"):
            db.command(f"TRUNCATE TABLE {table}")

    clear()
    result = generate(GenerationSpec(users=users, months=8, seed=11, end=ML_END), keep_truth=True)
    return result, clear


@pytest.fixture(scope="module")
def ml_history():
    """1,000 users over 8 months (seed 11) in the test store; emptied again after the module."""
    result, clear = _history(1000)
    yield result
    clear()


@pytest.fixture(scope="module")
def small_history():
    """400 users over 8 months (seed 11): enough for an end-to-end retrain, quicker."""
    result, clear = _history(400)
    yield result
    clear()


_TRAINED: dict = {}


def train_churn_once():
    """The churn model trained once per session on `ml_history` (deterministic, so shareable)."""
    from threadpoolctl import threadpool_limits

    from analytics.ml import training

    if "churn" not in _TRAINED:
        with threadpool_limits(limits=1):
            _TRAINED["churn"] = training.train(
                "churn", end=ML_END, window_days=30, horizon_days=30, ltv_horizon_days=90
            )
    return _TRAINED["churn"]


@pytest.fixture
def trained_churn(ml_history):
    return train_churn_once()
