"""A ClickHouse server through clickhouse-driver (native protocol), same SQL as the embedded store.

Query parameters are sent to the server (`server_side_params`), so `{name:Type}` placeholders
are bound by ClickHouse itself, exactly as chdb binds them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from threading import local

from django.conf import settings

from analytics.store.base import (
    AnalyticsStore,
    QueryTimeout,
    StoreError,
    StoreUnavailable,
    digest,
)


class ServerStore(AnalyticsStore):
    def __init__(self, url: str):
        self.url = url
        self._local = local()

    def __repr__(self) -> str:
        return "ServerStore(<CLICKHOUSE_URL>)"

    @property
    def identity(self) -> str:
        return digest(self.url)  # digested: the URL may carry a password

    def _client(self):
        client = getattr(self._local, "client", None)
        if client is None:
            from clickhouse_driver import Client

            client = Client.from_url(self.url)
            client.settings.update({"server_side_params": True})
            self._local.client = client
        return client

    def release(self) -> None:
        client = getattr(self._local, "client", None)
        self._local.client = None
        if client is not None:
            client.disconnect()

    def _execute(self, sql, params=None, *, timeout=None, **kwargs):
        from clickhouse_driver import errors

        limit = settings.CLICKHOUSE_QUERY_TIMEOUT if timeout is None else timeout
        try:
            return self._client().execute(
                sql, params or {}, settings={"max_execution_time": limit}, **kwargs
            )
        except (errors.NetworkError, errors.SocketTimeoutError, EOFError, OSError) as exc:
            self._local.client = None
            raise StoreUnavailable(str(exc)) from exc
        except errors.ServerException as exc:
            if exc.code == 159:
                raise QueryTimeout(f"query ran past {limit} s") from exc
            raise StoreError(str(exc)) from exc

    def query(self, sql, params=None, *, timeout=None) -> list[dict]:
        rows, columns = self._execute(sql, params, timeout=timeout, with_column_types=True)
        names = [name for name, _type in columns]
        return [dict(zip(names, row, strict=True)) for row in rows]

    def query_df(self, sql, params=None, *, timeout=None):
        import pandas as pd

        rows, columns = self._execute(sql, params, timeout=timeout, with_column_types=True)
        return pd.DataFrame(rows, columns=[name for name, _type in columns])

    def command(self, sql, params=None, *, timeout=None) -> None:
        self._execute(sql, params, timeout=timeout)

    def insert(self, table, rows) -> int:
        if not rows:
            return 0
        columns = list(rows[0].keys())
        self._execute(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES",
            [tuple(r.get(c) for c in columns) for r in rows],
        )
        return len(rows)

    def insert_json_each_row(self, table: str, payload: bytes) -> None:
        import json

        self.insert(table, [json.loads(line) for line in payload.splitlines() if line])

    @contextmanager
    def session(self) -> Iterator[ServerStore]:
        yield self
