"""Embedded ClickHouse (chdb) shared safely between the web, worker and beat processes.

chdb lets one process at a time open a data directory, so every use opens a short-lived
connection under an exclusive inter-process file lock (about 40 ms per open, query and
close on the target machines). `session()` holds one connection for several statements.
"""

from __future__ import annotations

import fcntl
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings

from analytics.store.base import (
    AnalyticsStore,
    QueryTimeout,
    StoreError,
    StoreUnavailable,
    digest,
    rows_to_json_each_row,
)

LOCK_WAIT_SECONDS = 60.0
_SESSION_SETTINGS = (
    "SET output_format_json_quote_64bit_integers = 0",
    "SET output_format_json_quote_decimals = 0",
    "SET date_time_input_format = 'best_effort'",
    "SET input_format_skip_unknown_fields = 1",
)
_TIMEOUT_CODES = ("Code: 159", "TIMEOUT_EXCEEDED")


def _literal(value: Any) -> str:
    if isinstance(value, list | tuple | set | frozenset):
        return "[" + ",".join(_literal(v) for v in value) + "]"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def _bind(params: Mapping[str, Any]) -> dict:
    """chdb binds scalars as text but needs arrays as ClickHouse literals ['a','b']."""
    return {
        k: _literal(v) if isinstance(v, list | tuple | set | frozenset) else v
        for k, v in params.items()
    }


def _parse_json_each_row(text: str) -> list[dict]:
    import json

    return [json.loads(line) for line in text.splitlines() if line]


class EmbeddedStore(AnalyticsStore):
    def __init__(self, path: str):
        self.path = str(Path(path).resolve())
        Path(self.path).mkdir(parents=True, exist_ok=True)
        self._lock_path = self.path + ".lock"
        self._thread_lock = threading.RLock()
        self._conn = None

    def __repr__(self) -> str:
        return f"EmbeddedStore({self.path!r})"

    @property
    def identity(self) -> str:
        return digest(self.path)

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        with self._thread_lock:
            if self._conn is not None:  # inside session(): reuse the open connection
                yield self._conn
                return
            import chdb

            with open(self._lock_path, "a") as lock_file:
                deadline = time.monotonic() + LOCK_WAIT_SECONDS
                while True:
                    try:
                        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() > deadline:
                            raise StoreUnavailable(
                                f"the embedded store at {self.path} stayed locked by another process"
                            ) from None
                        time.sleep(0.005)
                try:
                    try:
                        conn = chdb.connect(self.path)
                    except Exception as exc:
                        raise StoreUnavailable(f"cannot open the embedded store: {exc}") from exc
                    try:
                        for statement in _SESSION_SETTINGS:
                            conn.query(statement)
                        self._conn = conn
                        yield conn
                    finally:
                        self._conn = None
                        conn.close()
                finally:
                    fcntl.flock(lock_file, fcntl.LOCK_UN)

    @contextmanager
    def session(self) -> Iterator[EmbeddedStore]:
        with self._connection():
            yield self

    def _run(
        self, conn, sql: str, fmt: str, params: Mapping[str, Any] | None, timeout: float | None
    ):
        limit = settings.CLICKHOUSE_QUERY_TIMEOUT if timeout is None else timeout
        try:
            conn.query(f"SET max_execution_time = {float(limit)}")
            return conn.query(sql, fmt, params=_bind(params) if params else None)
        except Exception as exc:
            message = str(exc)
            if any(code in message for code in _TIMEOUT_CODES):
                raise QueryTimeout(f"query ran past {limit} s") from exc
            raise StoreError(message) from exc

    def query(self, sql, params=None, *, timeout=None) -> list[dict]:
        with self._connection() as conn:
            result = self._run(conn, sql, "JSONEachRow", params, timeout)
        return _parse_json_each_row(result.data() if hasattr(result, "data") else str(result))

    def query_df(self, sql, params=None, *, timeout=None):
        with self._connection() as conn:
            return self._run(conn, sql, "DataFrame", params, timeout)

    def command(self, sql, params=None) -> None:
        with self._connection() as conn:
            self._run(conn, sql, "CSV", params, None)

    def insert(self, table: str, rows: Sequence[Mapping[str, Any]]) -> int:
        if not rows:
            return 0
        self.insert_json_each_row(table, rows_to_json_each_row(rows))
        return len(rows)

    def insert_json_each_row(self, table: str, payload: bytes) -> None:
        """Insert pre-serialized JSONEachRow lines (the bulk path for generators and writers)."""
        if not table.replace("_", "").replace(".", "").isalnum():
            raise ValueError(f"not a table identifier: {table!r}")
        with self._connection() as conn:
            try:
                conn.query(f"INSERT INTO {table} FORMAT JSONEachRow\n" + payload.decode())
            except Exception as exc:
                raise StoreError(str(exc)) from exc
