"""A one-shard "cluster" on the embedded engine, for running the sharded schema for real.

Stands for a ClickHouse cluster of one shard without replicas: chdb is started with a
configuration whose `remote_servers` lists the local engine (its `tcp_port` makes the shard
local, so Distributed tables read and write the `_local` tables in-process). What it cannot
show: chdb has no Keeper, so Replicated tables are refused (NO_ZOOKEEPER), and it refuses
`ON CLUSTER` (QUERY_IS_PROHIBITED: "Replicated DDL queries are disabled"); the clause is
dropped here, which on a one-node cluster is what the distributed DDL queue would run anyway.
Nor does one shard show re-sharding, or data crossing the network.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from analytics.store.base import AnalyticsStore, StoreError, bind_params, decode_rows, digest

CONFIG = """<clickhouse>
  <tcp_port>9000</tcp_port>
  <remote_servers>
    <{cluster}>
      <shard><replica><host>localhost</host><port>9000</port></replica></shard>
    </{cluster}>
  </remote_servers>
</clickhouse>
"""


class OneShardClusterStore(AnalyticsStore):
    """Opens its own chdb connection: the caller releases the project's store first (chdb
    opens one data directory per process) and closes this one when done."""

    def __init__(self, path: Path, *, cluster: str):
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        config = path.with_name(path.name + ".xml")
        config.write_text(CONFIG.format(cluster=cluster))
        self.path, self.cluster = str(path), cluster
        import chdb

        self.conn = chdb.connect(f"{path}?config-file={config}")

    @property
    def identity(self) -> str:
        return digest(self.path)

    def _run(self, sql: str, fmt: str, params: Mapping[str, Any] | None = None):
        sql = sql.replace(f" ON CLUSTER '{self.cluster}'", "")
        try:
            return self.conn.query(sql, fmt, params=bind_params(params) if params else None)
        except Exception as exc:
            raise StoreError(str(exc)) from exc

    def query(self, sql, params=None, *, timeout=None, consistent=False) -> list[dict]:
        return decode_rows(self._run(sql, "JSONEachRow", params).data())

    def query_df(self, sql, params=None, *, timeout=None):
        return self._run(sql, "DataFrame", params)

    def command(self, sql, params=None, *, timeout=None) -> None:
        self._run(sql, "CSV", params)

    def insert_json_each_row(self, table: str, payload: bytes) -> None:
        self._run(f"INSERT INTO {table} FORMAT JSONEachRow\n{payload.decode()}", "CSV")

    @contextmanager
    def session(self) -> Iterator[OneShardClusterStore]:
        yield self

    def release(self) -> None:
        pass

    def close(self) -> None:
        self.conn.close()
