"""Audiences (saved cohorts) and the opens of pushes sent to them, for rooms that may not
import analytics: analytics registers its readers here when its app is ready.

Devices sends a push broadcast to a saved cohort's members and reads back who opened it (the
app's `$push_opened` capture event with the broadcast's id).
"""

from collections.abc import Callable, Iterator

_members: Callable[[int], Iterator[list[str]]] | None = None
_choices: Callable[[], list[tuple[int, str]]] | None = None
_opens: Callable[[str, list[int]], dict[int, int]] | None = None


class AudienceUnavailable(Exception):
    """No app keeps audiences, or the one named is unknown or not computed yet."""


def register(
    *,
    members: Callable[[int], Iterator[list[str]]],
    choices: Callable[[], list[tuple[int, str]]],
    opens: Callable[[str, list[int]], dict[int, int]],
) -> None:
    """`members(id)` yields the audience's user ids in pages (AudienceUnavailable when unknown);
    `choices()` lists (id, name); `opens(event, ids)` counts distinct users per id whose
    `event` carries that id as `broadcast_id`."""
    global _members, _choices, _opens
    _members, _choices, _opens = members, choices, opens


def members(audience_id: int) -> Iterator[list[str]]:
    if _members is None:
        raise AudienceUnavailable("no app keeps audiences")
    return _members(audience_id)


def choices() -> list[tuple[int, str]]:
    return _choices() if _choices is not None else []


def opens(event: str, broadcast_ids: list[int]) -> dict[int, int]:
    if _opens is None or not broadcast_ids:
        return {}
    return _opens(event, broadcast_ids)
