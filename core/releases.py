"""Release markers for time-series charts, from whichever app records releases.

Analytics and experiments draw rollouts on their charts but may not import deployments (it is
a sibling room); deployments registers its reader here when its app is ready.
"""

import datetime as dt
from collections.abc import Callable

_provider: Callable[..., list[dict]] | None = None


def register(provider: Callable[..., list[dict]]) -> None:
    """`provider(start=, end=)` returns [{"at": iso, "kind": start|promoted|rollback, "label"}]."""
    global _provider
    _provider = provider


def markers(*, start: dt.datetime, end: dt.datetime) -> list[dict]:
    """Releases in [start, end), oldest first; none when no app records releases."""
    return _provider(start=start, end=end) if _provider is not None else []
