"""Versioned schema migrations of the analytics store.

Each `analytics/store_migrations/NNNN_name.sql` holds statements separated by `;` on a line
end. Applied versions are recorded in `schema_migrations`; statements are written to be
idempotent (`IF NOT EXISTS`), so a run interrupted half-way can simply run again. The same
SQL runs on chdb and on a ClickHouse server.
"""

from pathlib import Path

from analytics.store import AnalyticsStore, store

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


def store_migrate(*, target: AnalyticsStore | None = None) -> list[str]:
    """Apply pending migrations; returns the versions applied now."""
    db = target or store()
    applied_now = []
    with db.session():
        db.command(_LEDGER)
        done = {
            row["version"] for row in db.query("SELECT DISTINCT version FROM schema_migrations")
        }
        for path in migration_files():
            version = path.stem
            if version in done:
                continue
            for statement in split_statements(path.read_text()):
                db.command(statement.rstrip(";"))
            db.insert("schema_migrations", [{"version": version}])
            applied_now.append(version)
    return applied_now
