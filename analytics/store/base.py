"""What every analytics store offers: parameterized queries, batch inserts, a ping."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from core.queues import Queue


class StoreError(Exception):
    """The store refused a statement (bad SQL, bad data, a type error).

    `code` is ClickHouse's error code when the store gave one; `row` is the 1-based row of an
    insert that the store named as the cause, and `line` that row's text (shortened)."""

    def __init__(
        self, message: str, *, code: int | None = None, row: int | None = None, line: str = ""
    ):
        super().__init__(message)
        self.code = code
        self.row = row
        self.line = line


class StoreUnavailable(StoreError):
    """A transient failure: the store could not be reached or opened, was restarting, or was
    overloaded (too many parts, memory). The caller retries later; nothing is dead-lettered."""


# Celery options of a task that reads the store (each such task is idempotent): the analytics
# queue, acknowledged late, and retried with backoff while the store is unavailable.
STORE_TASK_OPTIONS = {
    "queue": Queue.ANALYTICS,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (StoreUnavailable,),
    "retry_backoff": True,
    "max_retries": 5,
}


class QueryTimeout(StoreUnavailable):
    """A query ran past the configured time limit."""


# Settings both stores apply to every statement, so the same SQL gives the same results and
# Python types on either: numbers as JSON numbers, times read and shown in UTC, unknown input
# fields skipped, strings in Arrow results as strings, inserts written synchronously.
SESSION_SETTINGS: dict[str, str | int] = {
    "output_format_json_quote_64bit_integers": 0,
    "output_format_json_quote_decimals": 0,
    "date_time_input_format": "best_effort",
    "input_format_skip_unknown_fields": 1,
    "async_insert": 0,
    "session_timezone": "UTC",
    "output_format_arrow_string_as_string": 1,
}

# ClickHouse error codes that may pass on their own: retried with backoff, never treated as
# bad data. https://github.com/ClickHouse/ClickHouse/blob/master/src/Common/ErrorCodes.cpp
TIMEOUT_CODES = frozenset({159})  # TIMEOUT_EXCEEDED
TRANSIENT_CODES = frozenset(
    {
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        203,  # NO_FREE_CONNECTION
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        236,  # ABORTED
        241,  # MEMORY_LIMIT_EXCEEDED
        242,  # TABLE_IS_READ_ONLY
        252,  # TOO_MANY_PARTS
        285,  # TOO_FEW_LIVE_REPLICAS
        319,  # UNKNOWN_STATUS_OF_INSERT
        394,  # QUERY_WAS_CANCELLED
        425,  # SYSTEM_ERROR
        439,  # CANNOT_SCHEDULE_TASK
        999,  # KEEPER_EXCEPTION
        1000,  # POCO_EXCEPTION
    }
)
TRANSIENT_HTTP_STATUSES = frozenset({429, 502, 503, 504})
_CODE_RE = re.compile(r"Code: (\d+)\.")
_ROW_RE = re.compile(r"\(at row (\d+)\)")


def error_code(message: str) -> int | None:
    match = _CODE_RE.search(message)
    return int(match.group(1)) if match else None


def classify_error(
    message: str, *, code: int | None = None, payload: bytes | None = None, timeout: float = 0
) -> StoreError:
    """The store exception for a failure: transient ones are StoreUnavailable (QueryTimeout for
    a time limit), anything else StoreError; an insert's failing row is named when known."""
    code = code if code is not None else error_code(message)
    if code in TIMEOUT_CODES:
        return QueryTimeout(f"query ran past {timeout:g} s", code=code)
    if code in TRANSIENT_CODES:
        return StoreUnavailable(message, code=code)
    row, line = None, ""
    match = _ROW_RE.search(message)
    if match and payload is not None:
        row = int(match.group(1))
        lines = payload.splitlines()
        if 0 < row <= len(lines):
            line = lines[row - 1][:500].decode(errors="replace")
    detail = f"{message} [row {row}: {line}]" if line else message
    return StoreError(detail, code=code, row=row, line=line)


def _escaped(text: str) -> str:
    """ClickHouse's Escaped text format, in which a server reads `param_<name>` values."""
    return (
        text.replace("\\", "\\\\")
        .replace("\t", "\\t")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\0", "\\0")
    )


def _literal(value: Any) -> str:
    """A value inside an Array/Tuple parameter: a SQL literal."""
    if value is None:
        return "NULL"
    if isinstance(value, list | tuple | set | frozenset):
        return "[" + ",".join(_literal(v) for v in value) + "]"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    text = _scalar(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def _scalar(value: Any) -> str:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        text = value.strftime("%Y-%m-%d %H:%M:%S")
        return f"{text}.{value.microsecond // 1000:03d}" if value.microsecond else text
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def time_limit(timeout: float | None) -> float:
    """A statement's time limit in seconds: `timeout`, or CLICKHOUSE_QUERY_TIMEOUT."""
    from django.conf import settings

    return settings.CLICKHOUSE_QUERY_TIMEOUT if timeout is None else timeout


def table_identifier(table: str) -> str:
    """`table` if it is a plain (optionally database-qualified) identifier, else ValueError."""
    if not table.replace("_", "").replace(".", "").isalnum():
        raise ValueError(f"not a table identifier: {table!r}")
    return table


def bind_params(params: Mapping[str, Any] | None) -> dict[str, str]:
    """Query parameters as the text a ClickHouse server reads from `param_<name>`: both stores
    send exactly this, so one filter means the same on both. Times are UTC with milliseconds;
    arrays are literals; None is NULL (`\\N`)."""
    bound = {}
    for name, value in (params or {}).items():
        if value is None:
            bound[name] = "\\N"
        elif isinstance(value, list | tuple | set | frozenset):
            bound[name] = _literal(list(value))
        elif isinstance(value, bool):
            bound[name] = "1" if value else "0"
        elif isinstance(value, int | float):
            bound[name] = repr(value)
        else:
            bound[name] = _escaped(_scalar(value))
    return bound


def decode_rows(data: bytes | str) -> list[dict]:
    """JSONEachRow output as dicts: the one result decoding both stores share."""
    if isinstance(data, str):
        data = data.encode()
    # Rows end with \n only: str.splitlines() would also split inside a value at U+0085 or
    # U+2028, which JSON leaves unescaped.
    return [json.loads(line) for line in data.split(b"\n") if line.strip()]


def decode_arrow(data: bytes, *, describe: Callable[[], dict[str, str]] | None = None):
    """Arrow output as a pandas DataFrame: `query_df`'s decoding on both stores.

    Dates come out as datetime64[s] and times as naive UTC datetime64[ns], as pandas users of
    the store have always had them. Servers before 25.x write Date and DateTime columns to
    Arrow as plain UInt16 days and UInt32 seconds; when a frame has such columns, `describe`
    (the query's ClickHouse column types) tells which are really dates and times."""
    import pandas as pd
    import pyarrow as pa

    if not data:
        return pd.DataFrame()
    table = pa.ipc.open_file(pa.BufferReader(data)).read_all()
    frame = table.to_pandas(date_as_object=False)
    unsigned = [f.name for f in table.schema if f.type in (pa.uint16(), pa.uint32())]
    types = describe() if unsigned and describe is not None else {}
    for field in table.schema:
        name, kind = field.name, types.get(field.name, "")
        if pa.types.is_date(field.type):
            frame[name] = frame[name].astype("datetime64[s]")
        elif pa.types.is_timestamp(field.type):
            column = frame[name]
            if column.dt.tz is not None:
                column = column.dt.tz_convert("UTC").dt.tz_localize(None)
            frame[name] = column.astype("datetime64[ns]")
        elif kind.removeprefix("Nullable(").startswith("Date") and "Time" not in kind:
            frame[name] = pd.to_datetime(frame[name].astype("int64"), unit="D").astype(
                "datetime64[s]"
            )
        elif kind.removeprefix("Nullable(").startswith("DateTime"):
            frame[name] = pd.to_datetime(frame[name].astype("int64"), unit="s").astype(
                "datetime64[ns]"
            )
    return frame


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
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        consistent: bool = False,
    ) -> list[dict]:
        """Rows as dicts. `consistent`: the read must see every write acknowledged before it
        (the writer's duplicate check, the users dimension), also on a replicated server."""

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

    def insert(self, table: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert dict rows into `table` (an identifier from the code, never user input)."""
        if not rows:
            return 0
        self.insert_json_each_row(table, rows_to_json_each_row(rows))
        return len(rows)

    @abstractmethod
    def insert_json_each_row(self, table: str, payload: bytes) -> None:
        """Insert pre-serialized JSONEachRow lines in one statement (the bulk path for
        generators and the events writer), read with the session settings."""

    def column_types(self, sql: str, params: Mapping[str, Any] | None, timeout: float | None):
        """The ClickHouse type of each column `sql` returns, by name (for `decode_arrow`)."""
        rows = self.query(f"DESCRIBE ({sql})", params, timeout=timeout)
        return {row["name"]: row["type"] for row in rows}

    @abstractmethod
    def session(self) -> AbstractContextManager[AnalyticsStore]:
        """Hold one connection across several statements (for the embedded store: one lock)."""

    @abstractmethod
    def release(self) -> None:
        """Close this thread's or process's connection now; the next statement opens one."""

    def ping(self) -> None:
        self.query("SELECT 1 AS ok")
