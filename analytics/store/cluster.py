"""The migrations' one-node SQL rewritten for a sharded cluster (settings.CLICKHOUSE_CLUSTER):
each table becomes a `<name>_local` table on every node plus a `Distributed` `<name>` over it,
sharded by user so that a user's events, duplicates and rollups stay on one shard.

Pure functions of the SQL text. The .sql files stay written for one node; a statement this
module does not know raises `ClusterRewriteError` rather than run un-sharded on a cluster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The Replicated engines' Keeper path and replica name, from each server's <macros>.
REPLICA_PATH = "/clickhouse/tables/{shard}/{database}/%s"
REPLICA_NAME = "{replica}"

_NAME = re.compile(r"^[A-Za-z0-9_.{}-]+$")
_CREATE_TABLE = re.compile(
    r"^CREATE TABLE IF NOT EXISTS (?P<name>\w+)\s*\((?P<columns>.*)\)\s*"
    r"ENGINE\s*=\s*(?P<kind>\w*)MergeTree(?:\((?P<args>[^()]*)\))?(?P<rest>.*)$",
    re.DOTALL,
)
_CREATE_VIEW = re.compile(
    r"^CREATE MATERIALIZED VIEW IF NOT EXISTS (?P<name>\w+)\s+TO\s+(?P<target>\w+)\s+AS\s+"
    r"(?P<select>.*)$",
    re.DOTALL,
)
_ALTER = re.compile(r"^ALTER TABLE (?P<name>\w+)\s+(?P<rest>.*)$", re.DOTALL)
_COLUMN_CHANGE = re.compile(r"^(ADD|DROP|MODIFY|RENAME|COMMENT) COLUMN\b", re.IGNORECASE)
_INSERT = re.compile(r"^INSERT INTO (?P<name>\w+)\s+(?P<rest>SELECT\b.*)$", re.DOTALL)
_DROP = re.compile(r"^DROP (?P<kind>VIEW|TABLE) IF EXISTS (?P<name>\w+)$")
# A table read by a view's SELECT: after FROM or JOIN, neither a subquery nor db.table.
_SOURCE = re.compile(r"\b(?P<kw>FROM|JOIN)\s+(?P<name>\w+)\b(?![.(])")
_USER_ID_COLUMN = re.compile(r"(^|,)\s*user_id\s", re.MULTILINE)


class ClusterRewriteError(ValueError):
    """A migration statement of a shape the cluster rewrite does not know."""


@dataclass(frozen=True)
class ClusterLayout:
    """`name` is the server's <remote_servers> cluster; `replicated` False keeps plain
    MergeTree `_local` tables (shards without replicas, or an engine without Keeper)."""

    name: str
    replicated: bool = True

    def __post_init__(self):
        if not _NAME.match(self.name):
            raise ValueError(f"CLICKHOUSE_CLUSTER must be a cluster name, not {self.name!r}")

    @property
    def on_cluster(self) -> str:
        return f"ON CLUSTER '{self.name}'"


def cluster_query_settings() -> dict[str, object]:
    """Settings for queries through the Distributed tables (the store client should send them
    with every query on a cluster). All three names exist on 24.8 and 26.9:
    - distributed_product_mode = 'local': an IN / JOIN subquery on a Distributed table reads
      each shard's local table. Every table is sharded by user_id and the queries join and
      filter by user, so the local answer is the whole answer (the default, 'deny', refuses).
    - optimize_distributed_group_by_sharding_key: a GROUP BY that includes user_id finishes
      on the shards instead of merging every group on the node that was asked.
    - distributed_foreground_insert (called insert_distributed_sync before 23.x; 24.8 accepts
      both): an insert returns once the shards have the rows, so an event flushed or a
      migration recorded is read back at once, as on one node.
    """
    return {
        "distributed_product_mode": "local",
        "optimize_distributed_group_by_sharding_key": 1,
        "distributed_foreground_insert": 1,
    }


def _settings_clause() -> str:
    return ", ".join(
        f"{k} = '{v}'" if isinstance(v, str) else f"{k} = {v}"
        for k, v in cluster_query_settings().items()
    )


def sharding_key(columns: str) -> str:
    """By user where the table has a user_id (every table of the store has); otherwise rows
    are spread at random (the migration ledger, which is only ever read whole)."""
    return "cityHash64(user_id)" if _USER_ID_COLUMN.search(columns) else "rand()"


def rewrite_statement(sql: str, *, layout: ClusterLayout) -> list[str]:
    """One migration statement (one node's SQL) as the statements a cluster runs instead."""
    sql = sql.strip().rstrip(";").strip()
    on = layout.on_cluster
    if m := _CREATE_TABLE.match(sql):
        name, local = m["name"], m["name"] + "_local"
        if layout.replicated:
            args = ", ".join(
                a
                for a in (
                    f"'{REPLICA_PATH % local}'",
                    f"'{REPLICA_NAME}'",
                    (m["args"] or "").strip(),
                )
                if a
            )
            engine = f"Replicated{m['kind']}MergeTree({args})"
        else:
            engine = f"{m['kind']}MergeTree" + (f"({m['args']})" if m["args"] is not None else "")
        return [
            f"CREATE TABLE IF NOT EXISTS {local} {on} ({m['columns']}) ENGINE = {engine}{m['rest']}",
            f"CREATE TABLE IF NOT EXISTS {name} {on} AS {local} ENGINE = Distributed("
            f"'{layout.name}', currentDatabase(), '{local}', {sharding_key(m['columns'])})",
        ]
    if m := _CREATE_VIEW.match(sql):
        select = _SOURCE.sub(lambda s: f"{s['kw']} {s['name']}_local", m["select"])
        return [
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {m['name']} {on} "
            f"TO {m['target']}_local AS {select}"
        ]
    if m := _ALTER.match(sql):
        statements = [f"ALTER TABLE {m['name']}_local {on} {m['rest']}"]
        if _COLUMN_CHANGE.match(m["rest"]):  # a Distributed table must list the same columns
            statements.append(f"ALTER TABLE {m['name']} {on} {m['rest']}")
        return statements
    if m := _INSERT.match(sql):
        if re.search(r"\bSETTINGS\b", sql, re.IGNORECASE):
            raise ClusterRewriteError(f"a backfill with its own SETTINGS: {sql[:80]!r}")
        # Through the Distributed tables: read from every shard, re-sharded by the same key.
        return [f"INSERT INTO {m['name']} SETTINGS {_settings_clause()} {m['rest']}"]
    if m := _DROP.match(sql):
        if m["kind"] == "VIEW":
            return [f"DROP VIEW IF EXISTS {m['name']} {on}"]
        return [
            f"DROP TABLE IF EXISTS {m['name']} {on}",
            f"DROP TABLE IF EXISTS {m['name']}_local {on}",
        ]
    raise ClusterRewriteError(f"no cluster form for: {sql[:80]!r}")
