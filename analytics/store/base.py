"""What every analytics store offers: parameterized queries, batch inserts, a ping."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any


class StoreError(Exception):
    """The store refused a statement (bad SQL, type error, timeout)."""


class StoreUnavailable(StoreError):
    """The store could not be reached or opened; the caller may retry later."""


class QueryTimeout(StoreError):
    """A query ran past the configured time limit."""


def json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def digest(text: str) -> str:
    """A short stable digest (the same in every process, unlike Python's salted str hashing)."""
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def rows_to_json_each_row(rows: Iterable[Mapping[str, Any]]) -> bytes:
    return "\n".join(
        json.dumps(r, default=json_default, separators=(",", ":")) for r in rows
    ).encode()


class AnalyticsStore(ABC):
    """`query` returns a list of dicts; `insert` writes a batch (never call it per event)."""

    @property
    @abstractmethod
    def identity(self) -> str:
        """Names this store's data (its path or URL digested), for caches derived from it."""

    @abstractmethod
    def query(
        self, sql: str, params: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> list[dict]: ...

    @abstractmethod
    def query_df(
        self, sql: str, params: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ):
        """The same as `query`, as a pandas DataFrame (the fast path for large results)."""

    @abstractmethod
    def command(
        self, sql: str, params: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> None:
        """A statement without a result (DDL, ALTER, OPTIMIZE, INSERT ... SELECT); `timeout`
        (seconds) overrides CLICKHOUSE_QUERY_TIMEOUT, as for queries."""

    @abstractmethod
    def insert(self, table: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert dict rows into `table` (an identifier from the code, never user input)."""

    @abstractmethod
    def session(self) -> AbstractContextManager[AnalyticsStore]:
        """Hold one connection across several statements (for the embedded store: one lock)."""

    @abstractmethod
    def release(self) -> None:
        """Close this thread's or process's connection now; the next statement opens one."""

    def ping(self) -> None:
        self.query("SELECT 1 AS ok")
