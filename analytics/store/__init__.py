"""The analytics store: embedded ClickHouse (chdb) or a ClickHouse server, by CLICKHOUSE_URL.

Both take the same SQL with ClickHouse query parameters (`{name:Type}`); user input is only
ever passed as parameters.
"""

from functools import cache

from django.conf import settings

from analytics.store.base import AnalyticsStore, StoreError, StoreUnavailable

__all__ = [
    "AnalyticsStore",
    "StoreError",
    "StoreUnavailable",
    "readiness_check",
    "store",
    "store_for_url",
]


def store_for_url(url: str) -> AnalyticsStore:
    if url.startswith("chdb://"):
        from analytics.store.embedded import EmbeddedStore

        return EmbeddedStore(url.removeprefix("chdb://"))
    if url.startswith(("clickhouse://", "clickhouses://")):
        from analytics.store.server import ServerStore

        return ServerStore(url)
    raise ValueError(f"CLICKHOUSE_URL must start with chdb:// or clickhouse://, not {url!r}")


@cache
def _store(url: str) -> AnalyticsStore:
    return store_for_url(url)


def store() -> AnalyticsStore:
    """The process's store for settings.CLICKHOUSE_URL."""
    return _store(settings.CLICKHOUSE_URL)


def readiness_check() -> None:
    """`/ready`'s check of the analytics store (settings.READINESS_CHECKS)."""
    store().ping()
