"""Versioned schema migrations of the analytics store.

Each `analytics/store_migrations/NNNN_name.sql` holds statements separated by `;` on a line
end. Applied versions are recorded in `schema_migrations`; statements are written to be
idempotent (`IF NOT EXISTS`), so a run interrupted half-way can simply run again. The same
SQL runs on chdb and on a ClickHouse server. With settings.CLICKHOUSE_CLUSTER set, each statement
is rewritten for a sharded cluster first (`analytics.store.cluster`).

On a cluster, backfill INSERTs run through the Distributed tables from the node migrating:
every shard's rows travel through that node. For a large existing cluster, run such a
backfill per shard instead (the same SELECT into the `_local` table, on one replica of each
shard) before recording the version.
"""

from pathlib import Path
from typing import Literal

from django.conf import settings

from analytics.store import AnalyticsStore, store
from analytics.store.cluster import ClusterLayout, rewrite_statement

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "store_migrations"

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree ORDER BY version
"""


def migration_files() -> list[Path]:
    return sorted(p for p in MIGRATIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql"))


def split_statements(sql: str) -> list[str]:
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";\n") if s.strip().rstrip(";").strip()]


def cluster_layout() -> ClusterLayout | None:
    """The layout of settings.CLICKHOUSE_CLUSTER, or None on one node."""
    name = settings.CLICKHOUSE_CLUSTER
    return ClusterLayout(name, replicated=settings.CLICKHOUSE_CLUSTER_REPLICATED) if name else None


def statements_for(sql: str, *, layout: ClusterLayout | None) -> list[str]:
    """A migration file's statements, as one node or the cluster `layout` runs them."""
    statements = [s.rstrip(";") for s in split_statements(sql)]
    if layout is None:
        return statements
    return [out for s in statements for out in rewrite_statement(s, layout=layout)]


def store_migrate(
    *,
    target: AnalyticsStore | None = None,
    layout: ClusterLayout | Literal["settings"] | None = "settings",
) -> list[str]:
    """Apply pending migrations; returns the versions applied now. `layout` defaults to
    settings.CLICKHOUSE_CLUSTER's (replicated); None forces one node."""
    db = target or store()
    layout = cluster_layout() if layout == "settings" else layout
    applied_now = []
    with db.session():
        for statement in statements_for(_LEDGER, layout=layout):
            db.command(statement)
        done = {
            row["version"] for row in db.query("SELECT DISTINCT version FROM schema_migrations")
        }
        for path in migration_files():
            version = path.stem
            if version in done:
                continue
            for statement in statements_for(path.read_text(), layout=layout):
                db.command(statement)
            _record(db, version, clustered=layout is not None)
            applied_now.append(version)
    return applied_now


def _record(db: AnalyticsStore, version: str, *, clustered: bool) -> None:
    if not clustered:
        db.insert("schema_migrations", [{"version": version}])
        return
    # Through the Distributed ledger, and only back once a shard holds it: the next run, from
    # any node, reads it, so no version applies twice.
    db.command(
        "INSERT INTO schema_migrations (version) SETTINGS distributed_foreground_insert = 1 "
        "SELECT {version:String}",
        {"version": version},
    )
