"""Fixtures of the analytics tests: a small deterministic generated history with a known signal."""

import datetime as dt

import pytest

ML_END = dt.datetime(2026, 6, 30, 23, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def ml_history(django_db_blocker):
    """1,000 users over 8 months (seed 11) in the test store; emptied again after the module."""
    from analytics.generator import GenerationSpec, generate
    from analytics.store import store

    db = store()

    def clear():
        for table in ("events", "users", "user_insights"):
            db.command(f"TRUNCATE TABLE {table}")

    clear()
    result = generate(GenerationSpec(users=1000, months=8, seed=11, end=ML_END), keep_truth=True)
    yield result
    clear()
