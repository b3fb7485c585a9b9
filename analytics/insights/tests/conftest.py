"""Fixtures of the insight model tests: a small deterministic generated history with a known
signal for the models."""

import datetime as dt

import pytest

ML_END = dt.datetime(2026, 6, 30, 23, 0, tzinfo=dt.UTC)


def _history(users: int):
    from analytics.simulation import GenerationSpec, generate
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

    from analytics.insights import training

    if "churn" not in _TRAINED:
        with threadpool_limits(limits=1):
            _TRAINED["churn"] = training.train(
                "churn", end=ML_END, window_days=30, horizon_days=30, ltv_horizon_days=90
            )
    return _TRAINED["churn"]


@pytest.fixture
def trained_churn(ml_history):
    return train_churn_once()
