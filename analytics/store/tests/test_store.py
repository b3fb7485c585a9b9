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
    child = _child_inserts(20)
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


def _part_dirs(store_path: str) -> int:
    """Part directories on disk, over every table of the embedded store."""
    from pathlib import Path

    return sum(
        1
        for table in Path(store_path, "store").glob("*/*")
        for entry in table.iterdir()
        if entry.is_dir() and entry.name not in ("detached", "format_version.txt")
    )


@pytest.mark.skipif(not settings.CLICKHOUSE_URL.startswith("chdb://"), reason="embedded store only")
def test_parts_replaced_by_merges_leave_the_disk(scratch):
    """chdb never deletes merged-away parts itself; left on disk, every open reloads them."""
    for i in range(12):  # one part per insert, as the event writer's flushes make
        scratch.insert("scratch_items", [{"id": i, "name": "m", "at": "2026-01-01 00:00:00"}])
    scratch.command("OPTIMIZE TABLE scratch_items FINAL")
    scratch.command(
        "CREATE TABLE IF NOT EXISTS scratch_dropped (id UInt64) ENGINE = MergeTree ORDER BY id"
    )
    scratch.insert("scratch_dropped", [{"id": 1}])
    scratch.command("TRUNCATE TABLE scratch_dropped")  # outdated parts no active part covers
    scratch.release()  # a connection deletes the outdated parts when it closes
    with scratch.session() as db:
        parts = db.query(
            "SELECT countIf(active) AS live, countIf(NOT active) AS outdated FROM system.parts"
        )[0]
        rows = db.query("SELECT count() AS n, uniqExact(id) AS ids FROM scratch_items")
    assert parts["outdated"] == 0
    assert _part_dirs(scratch.path) == parts["live"]
    assert rows == [{"n": 12, "ids": 12}]
    scratch.command("DROP TABLE scratch_dropped")


@pytest.mark.skipif(not settings.CLICKHOUSE_URL.startswith("chdb://"), reason="embedded store only")
def test_a_connection_lingers_and_serves_the_next_statements(scratch, monkeypatch):
    import chdb

    opened = []
    real_connect = chdb.connect
    monkeypatch.setattr(chdb, "connect", lambda *a, **k: opened.append(a) or real_connect(*a, **k))
    scratch.release()
    for i in range(5):
        scratch.insert("scratch_items", [{"id": i, "name": "l", "at": "2026-01-01 00:00:00"}])
        assert scratch.query("SELECT count() AS n FROM scratch_items") == [{"n": i + 1}]
    assert len(opened) == 1
    scratch.release()
    assert scratch.query("SELECT count() AS n FROM scratch_items") == [{"n": 5}]
    assert len(opened) == 2


def _child_inserts(rows: int) -> subprocess.Popen:
    code = textwrap.dedent(
        f"""
        import os, django
        os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
        os.environ["CLICKHOUSE_URL"] = {settings.CLICKHOUSE_URL!r}
        django.setup()
        from analytics.store import store
        for i in range({rows}):
            store().insert("scratch_items", [{{"id": 1000 + i, "name": "child", "at": "2026-01-01 00:00:00"}}])
        """
    )
    return subprocess.Popen([sys.executable, "-c", code], cwd=settings.BASE_DIR)


@pytest.mark.skipif(not settings.CLICKHOUSE_URL.startswith("chdb://"), reason="embedded store only")
def test_an_idle_lingering_connection_gives_way_to_another_process(scratch, settings):
    """The parent keeps the store open for 10 minutes unless someone waits: the child, which
    needs it 5 times, must not wait that long."""
    settings.CLICKHOUSE_EMBEDDED_LINGER_SECONDS = 600
    scratch.insert("scratch_items", [{"id": 1, "name": "parent", "at": "2026-01-01 00:00:00"}])
    child = _child_inserts(5)
    assert child.wait(timeout=120) == 0
    assert scratch.query("SELECT count() AS n FROM scratch_items") == [{"n": 6}]
    scratch.release()


@pytest.mark.skipif(not settings.CLICKHOUSE_URL.startswith("chdb://"), reason="embedded store only")
def test_a_fork_never_inherits_the_open_store_or_its_lock(scratch, settings):
    """chdb is not fork-safe, and a forked child shares the parent's lock: the connection
    closes before every fork, so the lock is free in the child (which here only probes it)."""
    import fcntl
    import os

    settings.CLICKHOUSE_EMBEDDED_LINGER_SECONDS = 600
    scratch.insert("scratch_items", [{"id": 1, "name": "parent", "at": "2026-01-01 00:00:00"}])
    pid = os.fork()
    if pid == 0:  # the child: exit code 0 when it can take the store's lock at once
        try:
            with open(scratch.lock_path, "a") as probe:
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert scratch.query("SELECT count() AS n FROM scratch_items") == [{"n": 1}]


@pytest.mark.skipif(not settings.CLICKHOUSE_URL.startswith("chdb://"), reason="embedded store only")
def test_a_busy_process_still_takes_turns_with_a_waiting_one(scratch, settings):
    """The parent queries without pause; the child's 5 inserts must get through meanwhile
    (the parent closes after a statement whenever another process waits)."""
    import time

    settings.CLICKHOUSE_EMBEDDED_LINGER_SECONDS = 600
    child = _child_inserts(5)
    deadline = time.monotonic() + 120
    while child.poll() is None and time.monotonic() < deadline:
        scratch.query("SELECT count() AS n FROM scratch_items")
    assert child.poll() == 0  # it finished while the parent was still busy
    assert scratch.query("SELECT count() AS n FROM scratch_items") == [{"n": 5}]
