"""The one result cache of everything computed from the analytics store (product analyses,
experiment results): keys from normalized parameters, and one generation that a bulk load
bumps to forget them all.

    from analytics.store.cache import cached, cache_ttl
    cached("retention", {"query": query}, lambda: compute(query), ttl=cache_ttl(query.date_to))
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterator
from enum import StrEnum
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache

Result = TypeVar("Result")

_GENERATION_KEY = "panalytics:generation"
# Inside `cache_refresh()`, every `cached` call computes afresh and overwrites its entry.
_refreshing: contextvars.ContextVar[bool] = contextvars.ContextVar("refreshing", default=False)
# Part of every key: bump it whenever a result's shape or meaning changes, so a deploy never
# serves what the previous code cached (closed ranges are cached for a long time).
RESULT_VERSION = 2


def _normalize(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, list | tuple):
        return [_normalize(item) for item in value]
    if isinstance(value, dict):
        return {key: _normalize(item) for key, item in sorted(value.items())}
    if hasattr(value, "__dataclass_fields__"):
        return {key: _normalize(getattr(value, key)) for key in sorted(value.__dataclass_fields__)}
    return value


def cache_key(name: str, params: dict) -> str:
    text = json.dumps(_normalize(params), sort_keys=True, separators=(",", ":"))
    generation = cache.get(_GENERATION_KEY, 0)
    digest = hashlib.sha256(text.encode()).hexdigest()[:32]
    return f"panalytics:v{RESULT_VERSION}:{generation}:{name}:{digest}"


def cache_invalidate() -> None:
    """Forget every cached result (after a bulk load), leaving the rest of the cache alone."""
    try:
        cache.incr(_GENERATION_KEY)
    except ValueError:
        cache.set(_GENERATION_KEY, 1, None)


def cache_ttl(date_to: dt.date) -> int:
    """Short for ranges that include today (events still arrive), long for closed ranges."""
    today = dt.datetime.now(dt.UTC).date()
    if date_to >= today:
        return settings.ANALYTICS_CACHE_TTL_RECENT
    return settings.ANALYTICS_CACHE_TTL


def cached(name: str, params: dict, compute: Callable[[], Result], *, ttl: int) -> Result:
    """The cached result for these normalized params, computing and storing it on a miss."""
    key = cache_key(name, params)
    hit = None if _refreshing.get() else cache.get(key)
    if hit is not None:
        return hit
    result = compute()
    cache.set(key, result, ttl)
    return result


@contextlib.contextmanager
def cache_refresh() -> Iterator[None]:
    """Recompute every cached result asked for inside the block (a dashboard's refresh) and
    store it over the old one."""
    token = _refreshing.set(True)
    try:
        yield
    finally:
        _refreshing.reset(token)
