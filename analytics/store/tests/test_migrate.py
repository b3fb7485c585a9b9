"""Schema migrations: every file applies on the newest engine and on the one matching the
oldest supported server (24.8 LTS) with the same rollups; the cluster rewrite, as text and run
on a one-shard embedded cluster."""

import json
import re
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

from analytics.store import store, store_for_url
from analytics.store.cluster import (
    ClusterLayout,
    ClusterRewriteError,
    cluster_query_settings,
    rewrite_statement,
)
from analytics.store.migrate import migration_files, split_statements, statements_for, store_migrate
from testing.engines import OLDEST_ENGINE_PYTHON, oldest_engine_missing

OLD_ENGINE_PYTHON = OLDEST_ENGINE_PYTHON
RUNNER = Path(__file__).with_name("engine_runner.py")
needs_old_engine = pytest.mark.skipif(bool(oldest_engine_missing()), reason=oldest_engine_missing())
embedded_only = pytest.mark.skipif(
    not settings.CLICKHOUSE_URL.startswith("chdb://"), reason="embedded store only"
)


def _event(n: int, event: str, user: str, at: str, props: str) -> str:
    return f"('00000000-0000-0000-0000-{n:012d}', '{event}', '{user}', '{at}', '{props}')"


# Ties on the first time (u1's two signups) make argMin compare the tuple's second member.
EVENTS = "INSERT INTO events (uuid, event, user_id, timestamp, properties) VALUES " + ", ".join(
    [
        _event(1, "signup", "u1", "2026-01-01 10:00:00", '{"p":"b"}'),
        _event(2, "signup", "u1", "2026-01-01 10:00:00", '{"p":"a"}'),
        _event(2, "signup", "u1", "2026-01-01 10:00:00", '{"p":"a"}'),
        _event(3, "view", "u2", "2026-01-03 10:00:00", '{"p":"x"}'),
        _event(4, "view", "u2", "2026-02-09 08:30:00.250", '{"p":"y"}'),
        _event(5, "subscription_started", "u3", "2026-02-02 00:00:00", '{"mrr":9.5,"tier":"pro"}'),
        _event(6, "subscription_cancelled", "u3", "2026-03-02 00:00:00", "{}"),
    ]
)
# Strings only, so both engines' JSON compares as it is.
ROLLUPS = {
    "first": "SELECT event, user_id, toString(min(first_ts)) AS ts, "
    "argMinMerge(first_props) AS props FROM panalytics_user_first "
    "GROUP BY event, user_id ORDER BY event, user_id",
    "first_states": "SELECT event, user_id, hex(first_props) AS state FROM panalytics_user_first "
    "ORDER BY event, user_id, state",
    "days": "SELECT DISTINCT event, toString(day) AS day, user_id FROM panalytics_user_days "
    "ORDER BY event, day, user_id",
    "periods": "SELECT DISTINCT kind, event, toString(start) AS start, user_id "
    "FROM panalytics_user_periods ORDER BY kind, event, start, user_id",
    "times": "SELECT event, user_id, toString(arraySort(groupUniqArrayArray(times))) AS times "
    "FROM panalytics_user_event_times GROUP BY event, user_id ORDER BY event, user_id",
    "subscriptions": "SELECT DISTINCT user_id, toString(timestamp) AS at, toString(uuid) AS id, "
    "toString(mrr) AS mrr, tier FROM panalytics_subscriptions ORDER BY at",
}


def _all_statements() -> list[str]:
    return [s for path in migration_files() for s in statements_for(path.read_text(), layout=None)]


def _run_on_old_engine(statements: list[str], path: Path, config: Path | None = None) -> list[dict]:
    request = {"path": str(path), "statements": statements, "config": config and str(config)}
    done = subprocess.run(
        [OLD_ENGINE_PYTHON, str(RUNNER)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.fixture
def fresh_store():
    """A new, empty embedded store; the session's store reopens on its next statement."""
    store().release()
    db = store_for_url(f"chdb://{settings.VAR_DIR / 'chdb-migrate-fresh'}")
    db.release()
    import shutil

    shutil.rmtree(db.path, ignore_errors=True)
    Path(db.path).mkdir(parents=True)
    yield db
    db.release()


@embedded_only
def test_every_migration_applies_on_a_fresh_store_and_twice_changes_nothing(fresh_store):
    assert store_migrate(target=fresh_store, layout=None) == [p.stem for p in migration_files()]
    assert store_migrate(target=fresh_store, layout=None) == []
    views = fresh_store.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase() "
        "AND engine = 'MaterializedView' AND name LIKE 'panalytics_user_first%' ORDER BY name"
    )
    assert views == [{"name": "panalytics_user_first_typed_mv"}]  # 0021 swapped the view


@embedded_only
@needs_old_engine
def test_the_oldest_engine_applies_every_statement_with_the_same_rollups(fresh_store, tmp_path):
    """Each statement runs on ClickHouse 24.8 too (0010 once failed there: CANNOT_CONVERT_TYPE),
    then again after events arrived, so the backfills run on data; the rollups then read the
    same on both engines, down to the bytes of the argMin states."""
    statements = _all_statements()
    store_migrate(target=fresh_store, layout=None)
    fresh_store.command(EVENTS)
    for statement in statements:  # idempotent: a second run with data in the store
        fresh_store.command(statement)
    newest = {name: fresh_store.query(sql) for name, sql in ROLLUPS.items()}

    outcomes = _run_on_old_engine(
        [*statements, EVENTS, *statements, *ROLLUPS.values()], tmp_path / "old"
    )
    failed = [
        (sql.splitlines()[0], out["error"][:300])
        for sql, out in zip([*statements, EVENTS, *statements], outcomes, strict=False)
        if not out["ok"]
    ]
    assert failed == []
    oldest = dict(zip(ROLLUPS, (out["rows"] for out in outcomes[-len(ROLLUPS) :]), strict=True))
    assert oldest == newest
    assert newest["first"][0] == {
        "event": "signup",
        "user_id": "u1",
        "ts": "2026-01-01 10:00:00.000",
        "props": '{"p":"a"}',
    }
    assert [r["mrr"] for r in newest["subscriptions"]] == ["9.5", "0"]


LAYOUT = ClusterLayout("analytics")


def _rewritten(layout: ClusterLayout = LAYOUT) -> list[str]:
    return [
        out
        for path in migration_files()
        for s in split_statements(path.read_text())
        for out in rewrite_statement(s.rstrip(";"), layout=layout)
    ]


def test_every_table_becomes_a_replicated_local_table_and_a_distributed_one_by_user():
    statements = _rewritten()
    creates = [s for s in statements if s.startswith("CREATE TABLE")]
    locals_ = [s for s in creates if re.match(r"CREATE TABLE IF NOT EXISTS \w+_local ", s)]
    distributed = [s for s in creates if "ENGINE = Distributed(" in s]
    assert len(locals_) == len(distributed) == len(creates) // 2 == 10
    for s in locals_:
        name = re.match(r"CREATE TABLE IF NOT EXISTS (\w+) ", s)[1]
        assert "ON CLUSTER 'analytics'" in s
        assert re.search(
            rf"ENGINE = Replicated\w*MergeTree\('/clickhouse/tables/{{shard}}/{{database}}/{name}',"
            r" '\{replica\}'",
            s,
        ), s
    events = next(s for s in locals_ if "events_local" in s)
    assert (
        "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/events_local', "
        "'{replica}', received_at)" in events
    )
    for s in distributed:
        name = re.match(r"CREATE TABLE IF NOT EXISTS (\w+) ON CLUSTER 'analytics' AS", s)[1]
        assert s.endswith(
            f"AS {name}_local ENGINE = Distributed('analytics', currentDatabase(), "
            f"'{name}_local', cityHash64(user_id))"
        )


def test_views_read_and_write_only_local_tables_and_alters_reach_both_tables():
    statements = _rewritten()
    views = [s for s in statements if s.startswith("CREATE MATERIALIZED VIEW")]
    assert len(views) == 7
    for s in views:
        assert re.search(r"ON CLUSTER 'analytics' TO \w+_local AS SELECT", s), s
        assert re.findall(r"\b(?:FROM|JOIN)\s+(\w+)", s) == ["events_local"], s
    alters = [s for s in statements if s.startswith("ALTER")]
    # experiment columns (0008), release (0040)
    assert [re.match(r"ALTER TABLE (\w+) ON CLUSTER", s)[1] for s in alters] == [
        "events_local",
        "events",
    ] * 3
    assert "DROP VIEW IF EXISTS panalytics_user_first_mv ON CLUSTER 'analytics'" in statements


def test_backfills_run_through_the_distributed_tables_with_the_cluster_settings():
    inserts = [s for s in _rewritten() if s.startswith("INSERT")]
    assert len(inserts) == 6
    for s in inserts:
        assert "_local" not in s
        assert "SETTINGS distributed_product_mode = 'local', " in s
        assert "distributed_foreground_insert = 1 SELECT" in s


def test_unreplicated_layout_keeps_the_engines_and_the_ledger_spreads_at_random():
    (local, dist) = rewrite_statement(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version String) "
        "ENGINE = ReplacingMergeTree ORDER BY version",
        layout=ClusterLayout("c1", replicated=False),
    )
    assert local == (
        "CREATE TABLE IF NOT EXISTS schema_migrations_local ON CLUSTER 'c1' (version String) "
        "ENGINE = ReplacingMergeTree ORDER BY version"
    )
    assert dist.endswith("'schema_migrations_local', rand())")


def test_unknown_statements_and_bad_cluster_names_are_refused():
    with pytest.raises(ClusterRewriteError):
        rewrite_statement("OPTIMIZE TABLE events FINAL", layout=LAYOUT)
    with pytest.raises(ClusterRewriteError):
        rewrite_statement("INSERT INTO x SELECT 1 SETTINGS max_threads = 1", layout=LAYOUT)
    with pytest.raises(ValueError):
        ClusterLayout("a' OR 1")


def _format_checks(statements: list[str]) -> list[str]:
    return [f"SELECT length(formatQuery({_quote(s)})) > 0 AS parsed" for s in statements]


def _quote(sql: str) -> str:
    return "'" + sql.replace("\\", "\\\\").replace("'", "\\'") + "'"


def test_every_rewritten_statement_parses_on_the_newest_engine(analytics_store):
    for check in _format_checks(_rewritten()):
        assert analytics_store.query(check) == [{"parsed": 1}], check


@needs_old_engine
def test_every_rewritten_statement_parses_on_the_oldest_engine(tmp_path):
    outcomes = _run_on_old_engine(_format_checks(_rewritten()), tmp_path / "old")
    assert [o.get("error") for o in outcomes if not o["ok"]] == []
    assert all(o["rows"] == [{"parsed": 1}] for o in outcomes)


def test_cluster_query_settings_exist_under_these_names(analytics_store):
    names = list(cluster_query_settings())
    found = analytics_store.query(
        "SELECT name FROM system.settings WHERE name IN {names:Array(String)}", {"names": names}
    )
    assert sorted(r["name"] for r in found) == sorted(names)


@embedded_only
def test_a_one_shard_cluster_migrates_once_and_answers_through_distributed_tables(tmp_path):
    """Plain MergeTree `_local` tables (chdb has no Keeper for Replicated ones) behind
    Distributed tables, on a cluster whose one shard is the local engine."""
    from analytics.store.tests.cluster_store import OneShardClusterStore

    store().release()  # chdb opens one data directory per process
    db = OneShardClusterStore(tmp_path / "cluster", cluster="analytics")
    try:
        layout = ClusterLayout("analytics", replicated=False)
        assert store_migrate(target=db, layout=layout) == [p.stem for p in migration_files()]
        assert store_migrate(target=db, layout=layout) == []
        engines = {
            r["name"]: r["engine"]
            for r in db.query(
                "SELECT name, engine FROM system.tables WHERE database = currentDatabase()"
            )
        }
        assert engines["events"] == engines["schema_migrations"] == "Distributed"
        assert engines["events_local"] == "ReplacingMergeTree"
        assert engines["panalytics_user_first_local"] == "AggregatingMergeTree"

        db.command(
            EVENTS.replace(" VALUES ", " SETTINGS distributed_foreground_insert = 1 VALUES ", 1)
        )
        suffix = " SETTINGS " + ", ".join(
            f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}"
            for k, v in cluster_query_settings().items()
        )
        first = db.query(ROLLUPS["first"] + suffix)
        assert [(r["event"], r["user_id"], r["props"]) for r in first] == [
            ("signup", "u1", '{"p":"a"}'),
            ("subscription_cancelled", "u3", "{}"),
            ("subscription_started", "u3", '{"mrr":9.5,"tier":"pro"}'),
            ("view", "u2", '{"p":"x"}'),
        ]
        assert db.query("SELECT count() AS n FROM panalytics_user_first_local") == [{"n": 4}]
        subscribers = db.query(
            "SELECT uniqExact(user_id) AS n FROM events WHERE user_id IN "
            "(SELECT user_id FROM panalytics_subscriptions)" + suffix
        )
        assert subscribers == [{"n": 1}]
    finally:
        db.close()


TWO_LOCAL_SHARDS = """<clickhouse>
  <tcp_port>9000</tcp_port>
  <remote_servers><analytics>
    <shard><replica><host>localhost</host><port>9000</port></replica></shard>
    <shard><replica><host>127.0.0.1</host><port>9000</port></replica></shard>
  </analytics></remote_servers>
</clickhouse>
"""


@needs_old_engine
def test_the_oldest_engine_runs_the_cluster_schema_and_backfills_on_two_shards(tmp_path):
    """Two shards that are both the local engine (so every row reads twice: only whether each
    statement runs is checked). Two shards make 24.8 refuse 0012's backfill, `uuid NOT IN
    (SELECT ... FROM <Distributed>)`, unless its SETTINGS say distributed_product_mode =
    'local'. ON CLUSTER is dropped and the tables are unreplicated (no Keeper in chdb)."""
    config = tmp_path / "two-shards.xml"
    config.write_text(TWO_LOCAL_SHARDS)
    statements = [
        s.replace(" ON CLUSTER 'analytics'", "")
        for s in _rewritten(ClusterLayout("analytics", replicated=False))
    ]
    events = EVENTS.replace(" VALUES ", " SETTINGS distributed_foreground_insert = 1 VALUES ", 1)
    run = [*statements, events, *statements]
    outcomes = _run_on_old_engine(run, tmp_path / "old", config)
    failed = [
        (sql[:80], o["error"][:300]) for sql, o in zip(run, outcomes, strict=True) if not o["ok"]
    ]
    assert failed == []
