"""Release markers for time-series charts, from whichever app records releases.

Analytics and experiments draw rollouts on their charts but may not import deployments (it is
a sibling room); deployments registers its reader here when its app is ready.
"""

import datetime as dt
from collections.abc import Callable, Collection

_provider: Callable[..., list[dict]] | None = None
_services: Callable[[], list[str]] | None = None


def register(
    provider: Callable[..., list[dict]], *, services: Callable[[], list[str]] | None = None
) -> None:
    """`provider(start=, end=, services=)` returns [{"at": iso, "kind": start|promoted|rollback,
    "label", "service", "image_tag"}]; `services()` the names of the services released."""
    global _provider, _services
    _provider = provider
    _services = services


def markers(
    *, start: dt.datetime, end: dt.datetime, services: Collection[str] | None = None
) -> list[dict]:
    """Releases in [start, end), oldest first, of `services` only when given; none when no
    app records releases."""
    if _provider is None:
        return []
    return _provider(start=start, end=end, services=services)


def service_names() -> list[str]:
    """The services releases are recorded for (choices for "depends on services")."""
    return _services() if _services is not None else []
