"""The analytics store's data tables (views and the migration log left out), for tests that
empty the store or compare everything in it."""


def data_tables(db) -> set[str]:
    rows = db.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase() "
        "AND engine NOT IN ('View', 'MaterializedView') AND name != 'schema_migrations'"
    )
    return {row["name"] for row in rows}


def empty_store(db) -> None:
    """Every data table truncated, the schema kept."""
    with db.session():
        for table in data_tables(db):
            db.command(f"TRUNCATE TABLE IF EXISTS {table}")
