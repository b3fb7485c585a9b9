"""Fixtures of the event tests: an empty event buffer next to the emptied store, and events
as the product's apps send them."""

import pytest


@pytest.fixture
def event_buffer(analytics_store):
    """The Redis event buffer emptied (and the store emptied by analytics_store)."""
    from analytics.events.buffer import buffer_clear

    buffer_clear()
    yield
    buffer_clear()


IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
DESKTOP = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)


def make_event(i: int = 0, **overrides) -> dict:
    event = {
        "event": "video_rendered",
        "user_id": f"user-{i % 7}",
        "timestamp": f"2026-03-{1 + i % 28:02d}T{i % 24:02d}:15:00+00:00",
        "properties": {"video_style": "cinematic", "n": i},
    }
    event.update(overrides)
    return event
