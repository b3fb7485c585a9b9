"""The analytics store interface on the embedded ClickHouse: parameters, batches, processes."""

import subprocess
import sys
import textwrap

import pytest
from django.conf import settings

from analytics.store import store
from analytics.store.base import StoreError


@pytest.fixture
def scratch(analytics_store):
    analytics_store.command(
        "CREATE TABLE IF NOT EXISTS scratch_items (id UInt64, name String, at DateTime64(3, 'UTC')) "
        "ENGINE = MergeTree ORDER BY id"
    )
    analytics_store.command("TRUNCATE TABLE scratch_items")
    return analytics_store


def test_insert_then_query_with_parameters(scratch):
    rows = [{"id": i, "name": f"n{i}", "at": "2026-01-01 00:00:00"} for i in range(100)]
    assert scratch.insert("scratch_items", rows) == 100
    result = scratch.query(
        "SELECT count() AS n, max(id) AS top FROM scratch_items WHERE id >= {low:UInt64}",
        {"low": 50},
    )
    assert result == [{"n": 50, "top": 99}]


def test_parameters_are_bound_never_spliced(scratch):
    scratch.insert("scratch_items", [{"id": 1, "name": "a", "at": "2026-01-01 00:00:00"}])
    hostile = "x' OR 1=1 --"
    assert scratch.query(
        "SELECT count() AS n FROM scratch_items WHERE name = {name:String}", {"name": hostile}
    ) == [{"n": 0}]
    assert scratch.query("SELECT {v:String} AS v", {"v": hostile}) == [{"v": hostile}]


def test_query_df_matches_query(scratch):
    scratch.insert(
        "scratch_items", [{"id": i, "name": "z", "at": "2026-01-01 00:00:00"} for i in range(5)]
    )
    df = scratch.query_df("SELECT id FROM scratch_items ORDER BY id")
    assert df["id"].tolist() == [0, 1, 2, 3, 4]


def test_bad_sql_raises_store_error(analytics_store):
    with pytest.raises(StoreError):
        analytics_store.query("SELECT no_such_column FROM system.one")


def test_session_holds_one_connection_across_statements(scratch):
    with scratch.session() as db:
        db.insert("scratch_items", [{"id": 7, "name": "s", "at": "2026-01-01 00:00:00"}])
        assert db.query("SELECT count() AS n FROM scratch_items") == [{"n": 1}]


@pytest.mark.skipif(not settings.CLICKHOUSE_URL.startswith("chdb://"), reason="embedded store only")
def test_two_processes_write_and_read_the_same_embedded_store(scratch):
    """chdb allows one process per data directory; the file lock makes them take turns."""
    code = textwrap.dedent(
        f"""
        import os, django
        os.environ["DJANGO_SETTINGS_MODULE"] = "platform_site.settings"
        os.environ["CLICKHOUSE_URL"] = {settings.CLICKHOUSE_URL!r}
        django.setup()
        from analytics.store import store
        for i in range(20):
            store().insert("scratch_items", [{{"id": 1000 + i, "name": "child", "at": "2026-01-01 00:00:00"}}])
        """
    )
    child = subprocess.Popen([sys.executable, "-c", code], cwd=settings.BASE_DIR)
    for i in range(20):
        store().insert("scratch_items", [{"id": i, "name": "parent", "at": "2026-01-01 00:00:00"}])
        store().query("SELECT count() FROM scratch_items")
    assert child.wait(timeout=120) == 0
    counts = {
        r["name"]: r["n"]
        for r in store().query("SELECT name, count() AS n FROM scratch_items GROUP BY name")
    }
    assert counts == {"parent": 20, "child": 20}


def test_store_migrations_are_recorded_and_idempotent(analytics_store):
    from analytics.store.migrate import migration_files, store_migrate

    assert store_migrate() == []  # the session fixture applied everything already
    versions = {
        r["version"]
        for r in analytics_store.query("SELECT DISTINCT version FROM schema_migrations")
    }
    assert versions == {p.stem for p in migration_files()}
