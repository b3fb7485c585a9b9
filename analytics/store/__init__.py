"""The analytics store: embedded ClickHouse (chdb) or a ClickHouse server over HTTP(S), by
CLICKHOUSE_URL.

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
    from analytics.store.server import ServerStore, is_server_url

    if is_server_url(url):
        from analytics.store.cluster import cluster_query_settings

        # A sharded store's queries need these on every statement (analytics/store/cluster.py).
        return ServerStore(
            url, query_settings=cluster_query_settings() if settings.CLICKHOUSE_CLUSTER else None
        )
    raise ValueError(
        "CLICKHOUSE_URL must start with chdb:// (embedded) or http://, https://, clickhouse:// "
        f"(a server), not {url.split('://')[0]!r}://"
    )


@cache
def _store(url: str) -> AnalyticsStore:
    return store_for_url(url)


def store() -> AnalyticsStore:
    """The process's store for settings.CLICKHOUSE_URL."""
    return _store(settings.CLICKHOUSE_URL)


def readiness_check() -> None:
    """`/ready`'s check of the analytics store (settings.READINESS_CHECKS)."""
    store().ping()
