"""The analytics store as other rooms reach it, through whichever app keeps it.

Deployments judges canaries by the product events of each version's users, and its simulated
cluster writes the events its simulated users make, but it may not import analytics (a sibling
room); analytics registers its store here when its app is ready, as deployments registers its
release markers (core/releases.py) and chat destinations (core/chat.py).
"""

from collections.abc import Callable


class EventStoreUnavailable(Exception):
    """No app keeps an analytics store, or the store refused or failed the request."""


_query: Callable[..., list[dict]] | None = None
_insert: Callable[[list[dict]], int] | None = None
_errors: tuple[type[BaseException], ...] = ()


def register(
    *,
    query: Callable[..., list[dict]],
    insert_events: Callable[[list[dict]], int],
    errors: tuple[type[BaseException], ...],
) -> None:
    """`query(sql, params, **options)` answers row dicts; `insert_events(rows)` writes event
    rows and returns how many; `errors` are the store's exceptions, raised here as
    EventStoreUnavailable."""
    global _query, _insert, _errors
    _query, _insert, _errors = query, insert_events, errors


def query(sql: str, params: dict, **options) -> list[dict]:
    if _query is None:
        raise EventStoreUnavailable("no analytics store is installed")
    try:
        return _query(sql, params, **options)
    except _errors as exc:
        raise EventStoreUnavailable(str(exc)) from exc


def insert_events(rows: list[dict]) -> int:
    if _insert is None:
        raise EventStoreUnavailable("no analytics store is installed")
    try:
        return _insert(rows)
    except _errors as exc:
        raise EventStoreUnavailable(str(exc)) from exc
