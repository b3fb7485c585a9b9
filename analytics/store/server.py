"""A ClickHouse server over HTTP(S) through clickhouse-connect, with the embedded store's SQL.

clickhouse-connect is the client ClickHouse Inc. maintains. It binds `{name:Type}` parameters
on the server (moving large ones into the request body), works through load balancers, TLS and
ClickHouse Cloud, and lets the store choose the result format: both stores read JSONEachRow
(and Arrow for DataFrames) and decode it with the same code, with the same session settings,
so the same SQL gives the same Python values on either. (The native-protocol client this
replaced cannot be tested on these machines, and its path was found broken.)

`CLICKHOUSE_URL` forms: `http://user:pass@host:8123/db`, `https://...` (port 8443 by default),
`clickhouse://...` (HTTP on 8123; `clickhouse+https://` or `?secure=1` for TLS). Query-string
options: `secure`, `verify` (0 to skip TLS verification), `compress` (`lz4`, `zstd`, `gzip`;
off by default), `connect_timeout`, `send_receive_timeout`; any other option is passed to the
server as a ClickHouse setting of every statement.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from django.conf import settings

from analytics.store.base import (
    SESSION_SETTINGS,
    TRANSIENT_HTTP_STATUSES,
    AnalyticsStore,
    StoreError,
    StoreUnavailable,
    bind_params,
    classify_error,
    decode_arrow,
    decode_rows,
    digest,
    table_identifier,
    time_limit,
)

_SCHEMES = {
    "http": False,
    "https": True,
    "clickhouse": False,
    "clickhouse+http": False,
    "clickhouse+https": True,
    "clickhouses": True,
}
_CLIENT_OPTIONS = {"secure", "verify", "compress", "connect_timeout", "send_receive_timeout"}
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class ServerAddress:
    """A CLICKHOUSE_URL taken apart."""

    host: str
    port: int
    username: str = "default"
    password: str = field(default="", repr=False)
    database: str = "default"
    secure: bool = False
    verify: bool = True
    compress: str | bool = False
    connect_timeout: float = 10.0
    send_receive_timeout: float | None = None
    settings: dict = field(default_factory=dict)

    @classmethod
    def parse(cls, url: str) -> ServerAddress:
        parts = urlsplit(url)
        if parts.scheme not in _SCHEMES:
            raise ValueError(f"CLICKHOUSE_URL scheme must be one of {sorted(_SCHEMES)}")
        options = dict(parse_qsl(parts.query))
        secure = _SCHEMES[parts.scheme] or options.get("secure", "").lower() in _TRUE
        compress = options.get("compress", "")
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (8443 if secure else 8123),
            username=unquote(parts.username or "default"),
            password=unquote(parts.password or ""),
            database=parts.path.strip("/") or "default",
            secure=secure,
            verify=options.get("verify", "1").lower() in _TRUE,
            compress=compress if compress and compress.lower() not in {"0", "false"} else False,
            connect_timeout=float(options.get("connect_timeout", 10)),
            send_receive_timeout=(
                float(options["send_receive_timeout"])
                if "send_receive_timeout" in options
                else None
            ),
            settings={k: v for k, v in options.items() if k not in _CLIENT_OPTIONS},
        )


class _Bound:
    """A parameter already in the server's param_ text form (`bind_params`): clickhouse-connect
    sends the str() of values it does not know as they are, so nothing is escaped twice."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def __str__(self) -> str:
        return self.text


class ServerStore(AnalyticsStore):
    """One connection pool per process (rebuilt after a fork), shared by its threads."""

    def __init__(self, url: str, *, query_settings: Mapping[str, Any] | None = None):
        self.url = url
        self.address = ServerAddress.parse(url)
        self.query_settings = dict(query_settings or {})
        self._lock = threading.Lock()
        self._client_obj = None
        self._pid = None

    def __repr__(self) -> str:
        return f"ServerStore({self.address.host}:{self.address.port}/{self.address.database})"

    @property
    def identity(self) -> str:
        return digest(self.url)  # digested: the URL may carry a password

    def _client(self):
        pid = os.getpid()
        if self._client_obj is not None and self._pid == pid:
            return self._client_obj
        with self._lock:
            if self._client_obj is None or self._pid != pid:
                self._client_obj = self._connect()
                self._pid = pid
        return self._client_obj

    def _connect(self):
        import clickhouse_connect

        address = self.address
        timeout = address.send_receive_timeout or settings.CLICKHOUSE_QUERY_TIMEOUT + 30
        # Called inside `_translated`: a refused connection is the store's error too.
        return clickhouse_connect.get_client(
            host=address.host,
            port=address.port,
            username=address.username,
            password=address.password,
            database=address.database,
            secure=address.secure,
            verify=address.verify,
            compress=address.compress,
            connect_timeout=address.connect_timeout,
            send_receive_timeout=timeout,
            # Threads share the client: no server session, whose queries would serialize.
            autogenerate_session_id=False,
            settings={**SESSION_SETTINGS, **address.settings},
        )

    def release(self) -> None:
        with self._lock:
            client, self._client_obj = self._client_obj, None
        if client is not None:
            client.close()

    def _settings(self, timeout: float | None, *, consistent: bool = False) -> dict:
        chosen = {**self.query_settings, "max_execution_time": time_limit(timeout)}
        if consistent and settings.CLICKHOUSE_REPLICATED:
            # A replica behind the load balancer may not have the last insert yet.
            chosen["select_sequential_consistency"] = 1
        return chosen

    def _insert_settings(self) -> dict:
        chosen = self._settings(None)
        if settings.CLICKHOUSE_REPLICATED:
            # Acknowledged once a majority of replicas has the rows, so a consistent read on
            # any replica sees them (self-managed Replicated tables; Cloud needs no quorum).
            chosen["insert_quorum"] = "auto"
        return chosen

    @contextmanager
    def _translated(self, *, timeout: float | None = None, payload: bytes | None = None):
        """Client and transport failures as the store's errors (base.classify_error)."""
        from clickhouse_connect.driver.exceptions import ClickHouseError

        try:
            yield
        except ClickHouseError as exc:
            raise self._error(exc, payload=payload, timeout=time_limit(timeout)) from exc
        except OSError as exc:
            raise StoreUnavailable(str(exc)) from exc

    def _error(self, exc: Exception, *, payload: bytes | None, timeout: float) -> StoreError:
        from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

        message = str(exc)
        code = getattr(exc, "code", None)
        if code is not None:
            return classify_error(message, code=int(code), payload=payload, timeout=timeout)
        transient_status = any(f"HTTP status {s}" in message for s in TRANSIENT_HTTP_STATUSES)
        # Without a ClickHouse code the request failed on its way: network, TLS, refused, or a
        # proxy's transient status.
        if not isinstance(exc, DatabaseError) or isinstance(exc, OperationalError):
            return StoreUnavailable(message)
        return StoreUnavailable(message) if transient_status else StoreError(message)

    @staticmethod
    def _bound(params) -> dict | None:
        return {name: _Bound(text) for name, text in bind_params(params).items()} or None

    def query(self, sql, params=None, *, timeout=None, consistent=False) -> list[dict]:
        with self._translated(timeout=timeout):
            data = self._client().raw_query(
                sql,
                parameters=self._bound(params),
                settings=self._settings(timeout, consistent=consistent),
                fmt="JSONEachRow",
            )
        return decode_rows(data)

    def query_df(self, sql, params=None, *, timeout=None):
        with self._translated(timeout=timeout):
            data = self._client().raw_query(
                sql, parameters=self._bound(params), settings=self._settings(timeout), fmt="Arrow"
            )
        return decode_arrow(data, describe=lambda: self.column_types(sql, params, timeout))

    def command(self, sql, params=None, *, timeout=None) -> None:
        with self._translated(timeout=timeout):
            self._client().command(
                sql, parameters=self._bound(params), settings=self._settings(timeout)
            )

    def insert_json_each_row(self, table: str, payload: bytes) -> None:
        with self._translated(payload=payload):
            self._client().raw_insert(
                table_identifier(table),
                insert_block=payload,
                settings=self._insert_settings(),
                fmt="JSONEachRow",
            )

    @contextmanager
    def session(self) -> Iterator[ServerStore]:
        yield self


def is_server_url(url: str) -> bool:
    return urlsplit(url).scheme in _SCHEMES


__all__ = ["ServerAddress", "ServerStore", "StoreError", "is_server_url"]
