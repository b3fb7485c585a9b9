"""How the generator writes: staged in a view-less copy of `events` whose rows then fill each
rollup and are attached to `events`, or directly through `events` and its materialized views.
Both must leave exactly the same rows everywhere (against the real embedded store)."""

import datetime as dt

import pytest
from django.conf import settings

from analytics.simulation import GenerationSpec, generate
from analytics.store.tests.stores import data_tables, empty_store

SPEC = GenerationSpec(
    users=300, months=4, seed=5, end=dt.datetime(2026, 5, 31, 23, 59, tzinfo=dt.UTC)
)

# Every table's rows in a form that does not depend on how parts were written or merged:
# aggregate states finalized, repeats collapsed; (count, order-independent hash).
SNAPSHOT = {
    "events": "SELECT uuid, event, user_id, timestamp, properties, session_id, user_agent, "
    "user_tier, device_type, is_mobile, country, video_style FROM events FINAL",
    "users": "SELECT * FROM users FINAL",
    "panalytics_user_first": "SELECT event, user_id, min(first_ts), argMinMerge(first_props) "
    "FROM panalytics_user_first GROUP BY event, user_id",
    "panalytics_user_days": "SELECT DISTINCT * FROM panalytics_user_days",
    "panalytics_user_periods": "SELECT DISTINCT * FROM panalytics_user_periods",
    "panalytics_user_event_times": "SELECT event, user_id, arraySort(groupUniqArrayArray(times)) "
    "FROM panalytics_user_event_times GROUP BY event, user_id",
    "panalytics_subscriptions": "SELECT DISTINCT * FROM panalytics_subscriptions",
    # written by the ML tasks, never by the generator
    "user_insights": "SELECT * FROM user_insights",
    # written by cohort computation, never by the generator
    "cohort_members": "SELECT * FROM cohort_members",
    # written by the event writer's identity links, never by the generator
    "person_distinct_ids": "SELECT * FROM person_distinct_ids",
}


def _snapshot(db) -> dict[str, tuple[int, int]]:
    assert data_tables(db) == set(SNAPSHOT), "a new table: add it to SNAPSHOT"
    out = {}
    for table, select in SNAPSHOT.items():
        row = db.query(f"SELECT count() AS n, sum(cityHash64(*)) AS h FROM ({select})")[0]
        out[table] = (row["n"], row["h"])
    return out


def _dropped_copies_on_disk(db) -> list[str]:
    """Dropped staging copies whose files still wait on the embedded store's disk."""
    from pathlib import Path

    from analytics.store.embedded import EmbeddedStore

    if not isinstance(db, EmbeddedStore):
        return []
    return [p.name for p in Path(db.path, "metadata_dropped").glob("*generate_events_rows_*")]


def test_staged_and_direct_writes_leave_the_same_rows(analytics_store):
    db = analytics_store
    direct = generate(SPEC, direct=True)
    through_views = _snapshot(db)
    empty_store(db)
    staged = generate(SPEC)
    assert staged.events == direct.events > 10_000
    assert _snapshot(db) == through_views
    assert through_views["events"][0] == direct.events
    written_elsewhere = ("user_insights", "cohort_members", "person_distinct_ids")
    assert all(n > 0 for table, (n, _) in through_views.items() if table not in written_elsewhere)
    assert data_tables(db) == set(SNAPSHOT)  # the staging copy is gone, files too
    assert not _dropped_copies_on_disk(db)


def test_rows_go_through_events_when_a_view_cannot_be_re_aimed(analytics_store):
    """A view without `TO` (its own inner table) cannot be filled from the copy: every chunk
    then goes through `events`, so that view sees the rows too."""
    db = analytics_store
    db.command(
        "CREATE MATERIALIZED VIEW test_inner_mv ENGINE = SummingMergeTree ORDER BY event "
        "AS SELECT event, count() AS n FROM events GROUP BY event"
    )
    try:
        result = generate(SPEC)
        counted = db.query("SELECT sum(n) AS n FROM test_inner_mv")[0]["n"]
        assert counted == result.events
    finally:
        db.command("DROP VIEW test_inner_mv")


@pytest.mark.skipif(
    not settings.CLICKHOUSE_URL.startswith("chdb://"),
    reason="embedded store only: a server gets rows straight into events, with no staging copy",
)
def test_a_failed_chunk_drops_the_staging_copy(analytics_store, monkeypatch):
    db = analytics_store
    command = type(db).command

    def failing(self, sql, params=None, *, timeout=None):
        if sql.startswith("ALTER TABLE events ATTACH PARTITION"):
            raise RuntimeError("store went away")
        return command(self, sql, params, timeout=timeout)

    monkeypatch.setattr(type(db), "command", failing)
    with pytest.raises(RuntimeError, match="store went away"):
        generate(SPEC)
    monkeypatch.undo()
    assert not [t for t in data_tables(db) if t.startswith("generate_events_rows_")]
    assert not _dropped_copies_on_disk(db)
    assert db.query("SELECT count() AS n FROM events")[0]["n"] == 0
    # a second run repairs what the first left behind
    result = generate(SPEC)
    assert db.query("SELECT count() AS n FROM events FINAL")[0]["n"] == result.events
