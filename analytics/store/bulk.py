"""Bulk loads into the analytics store: columnar frames through INSERT ... SELECT (Parquet
files for the embedded store, a staging table of this run for a server), and batched row
inserts. On the embedded store only, `events` rows are staged in a view-less copy whose rows
then fill each rollup through its materialized view's own SELECT (re-aimed by parsing the view
DDL) before its partitions are attached: on a server (replicas behind a load balancer, or a
cluster) rows go straight into `events` and its views run as on any insert.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

from analytics.store import AnalyticsStore, store

# The tables a bulk reload empties: raw events, the rollups the materialized views keep and the
# identity links the events were moved by.
STORE_TABLES = (
    "events",
    "person_distinct_ids",
    "panalytics_user_first",
    "panalytics_user_days",
    "panalytics_user_periods",
    "panalytics_user_event_times",
    "panalytics_subscriptions",
)
ROWS_PER_INSERT = 200_000

# One chunk's events are one INSERT (about 2 M rows for a full chunk): far longer than an
# interactive query may run.
BULK_TIMEOUT_SECONDS = 3600.0


def events_insert_sql(selects: list[str], table: str) -> str:
    """One INSERT of several event types' rows: the store squashes them into large blocks, so
    a chunk of users writes few parts, not one set per event type. The MATERIALIZED columns
    are written directly: re-parsing the JSON costs a third."""
    return (
        f"INSERT INTO {table} (uuid, event, user_id, timestamp, properties, session_id, "
        "user_agent, user_tier, device_type, is_mobile, country)\n"
        + "\nUNION ALL".join(selects)
        + "\nSETTINGS insert_allow_materialized_columns = 1"
    )


_VIEW_SOURCE = re.compile(r"\bFROM\s+(?:`?\w+`?\.)?`?events`?(?=\s|\)|$)")

_VIEW_TARGET = re.compile(r"^CREATE MATERIALIZED VIEW \S+ TO (\S+) ")


class StagedRows:
    """Where a chunk's events go. The rollups' materialized views cost as much again as the
    insert when they run block by block, so when every view on `events` can be re-aimed (it
    writes `TO` a table and reads `events` once) the chunk goes to a view-less copy of
    `events` instead; each view's own SELECT then fills its table from that copy in one pass,
    and the copy's partitions are attached to `events` (an attach runs no views). Otherwise,
    or when asked, rows go through `events` and its views as any insert does.

    A failure part way through leaves rows a second run with the same seed repairs: the same
    uuids collapse in `events`, and every rollup tolerates a repeated row (see their
    migrations)."""

    def __init__(self, db: AnalyticsStore, *, direct: bool = False):
        from analytics.store.embedded import EmbeddedStore

        self.db = db
        self.stage = f"generate_events_rows_{uuid.uuid4().hex[:12]}"
        # ATTACH PARTITION and re-aimed views are for one embedded process: a server's
        # requests may reach another replica, and a cluster's events are Distributed.
        direct = direct or not isinstance(db, EmbeddedStore)
        self.backfills = None if direct else self._backfills()
        self.table = "events" if self.backfills is None else self.stage

    def __enter__(self) -> StagedRows:
        if self.backfills is not None:
            self.db.command(f"CREATE TABLE {self.stage} AS events")
        return self

    def __exit__(self, *exc) -> None:
        if self.backfills is not None:
            self.db.command(f"DROP TABLE IF EXISTS {self.stage}")

    def _backfills(self) -> list[str] | None:
        views = self.db.query(
            "SELECT name, as_select, create_table_query FROM system.tables "
            "WHERE database = currentDatabase() AND has(("
            "    SELECT any(dependencies_table) FROM system.tables "
            "    WHERE database = currentDatabase() AND name = 'events'), name)"
        )
        inserts = []
        for view in views:
            target = _VIEW_TARGET.match(view["create_table_query"])
            sources = _VIEW_SOURCE.findall(view["as_select"])
            if target is None or len(sources) != 1:
                return None
            select = _VIEW_SOURCE.sub(f"FROM {self.stage}", view["as_select"])
            inserts.append(f"INSERT INTO {target[1]} {select}")
        return inserts

    def publish(self) -> None:
        """Move the staged chunk into `events` and its rollups (nothing to do when direct)."""
        if self.backfills is None:
            return
        partitions = self.db.query(
            "SELECT DISTINCT partition_id FROM system.parts "
            "WHERE database = currentDatabase() AND table = {stage:String} AND active",
            {"stage": self.stage},
        )
        for row in partitions:
            self.db.command(
                f"ALTER TABLE events ATTACH PARTITION ID '{row['partition_id']}' FROM {self.stage}",
                timeout=BULK_TIMEOUT_SECONDS,
            )
        for insert in self.backfills:
            self.db.command(insert, timeout=BULK_TIMEOUT_SECONDS)
        self.db.command(f"TRUNCATE TABLE {self.stage}")


class FrameLoader:
    """Runs INSERT ... SELECT over columnar frames: Parquet files for chdb, staging tables
    otherwise. `load` takes several frames and an SQL builder given one source per frame."""

    def __init__(self, db: AnalyticsStore):
        from analytics.store.embedded import EmbeddedStore

        self.db = db
        self.embedded = isinstance(db, EmbeddedStore)
        self.tmp = Path(tempfile.mkdtemp(prefix="generate_events_"))
        self.run = uuid.uuid4().hex[:12]  # staging names unique to this run
        self.count = 0

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def load(self, frames: list[dict[str, np.ndarray]], sql: Callable[[list[str]], str], params):
        import pyarrow as pa

        staged: list[Path | str] = []  # Parquet files (chdb) or staging tables
        try:
            for columns in frames:
                staged.append(self._stage(pa.table(columns)))
            sources = [f"file('{s}', Parquet)" if isinstance(s, Path) else s for s in staged]
            self.db.command(sql(sources), params, timeout=BULK_TIMEOUT_SECONDS)
        finally:
            for item in staged:
                if isinstance(item, Path):
                    item.unlink(missing_ok=True)
                else:
                    self.db.command(f"DROP TABLE IF EXISTS {item}")

    def _stage(self, table) -> Path | str:
        self.count += 1
        if self.embedded:
            import pyarrow.parquet as pq

            path = self.tmp / f"frame{self.count}.parquet"
            pq.write_table(table, path, compression="none", row_group_size=65536)
            return path
        # A MergeTree table, not Memory: on a replicated database every replica sees it.
        stage = f"generate_events_stage_{self.run}_{self.count}"
        types = {"int64": "Int64", "uint64": "UInt64", "int32": "Int32", "uint8": "UInt8"}
        ddl = ", ".join(
            f"{c} {types.get(str(t), 'Float64')}"
            for c, t in zip(table.column_names, table.schema.types, strict=True)
        )
        self.db.command(f"CREATE TABLE {stage} ({ddl}) ENGINE = MergeTree ORDER BY tuple()")
        rows = table.to_pylist()
        for start in range(0, len(rows), ROWS_PER_INSERT):
            self.db.insert(stage, rows[start : start + ROWS_PER_INSERT])
        return stage


def rows_insert(*, table: str, rows: list[dict], batch: int = ROWS_PER_INSERT) -> int:
    """Insert row dicts into `table` in batches of `batch` rows, in one store session."""
    db = store()
    with db.session():
        for start in range(0, len(rows), batch):
            db.insert(table, rows[start : start + batch])
    return len(rows)
