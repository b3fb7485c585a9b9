"""Chat notifications from any room, through whichever app keeps the chat webhooks.

Analytics alerts post to chat but may not import deployments (a sibling room), which keeps
the webhooks (its alert providers); deployments registers its destinations and sender here
when its app is ready, as it does for release markers (core/releases.py).
"""

from collections.abc import Callable
from dataclasses import dataclass, field


class ChatDeliveryFailed(Exception):
    """The destination did not take the message but may later (no answer, 429 or 5xx)."""


class ChatUnavailable(Exception):
    """No app keeps chat destinations, or the one named does not exist (or is disabled)."""


@dataclass(frozen=True)
class ChatMessage:
    severity: str  # info | warning | error
    title: str  # one line, e.g. "Weekly renders fell 32 %"
    text: str  # a sentence or two
    url: str = ""  # the page to open
    fields: dict = field(default_factory=dict)  # machine-readable details for JSON webhooks


_destinations: Callable[[], list[str]] | None = None
_send: Callable[[str, ChatMessage], int | None] | None = None


def register(
    *, destinations: Callable[[], list[str]], send: Callable[[str, ChatMessage], int | None]
) -> None:
    """`destinations()` names the enabled ones; `send(name, message)` posts through the
    outbound guard and returns the HTTP status (None: the guard refused the URL), raising
    ChatDeliveryFailed for what may pass and ChatUnavailable for an unknown name."""
    global _destinations, _send
    _destinations, _send = destinations, send


def destinations() -> list[str]:
    return _destinations() if _destinations is not None else []


def send(destination: str, message: ChatMessage) -> int | None:
    if _send is None:
        raise ChatUnavailable("no chat destinations are configured")
    return _send(destination, message)
