"""The Events page in headless Chromium: a PM filters, sees the plotly chart, opens an event."""

import datetime as dt
import uuid

import pytest

from analytics.events.services import events_capture, events_flush
from analytics.events.tests.conftest import DESKTOP, IPHONE

pytestmark = [pytest.mark.browser]


def test_pm_filters_events_and_opens_one(page, live_asgi, login, pm, event_buffer, artifact):
    now = dt.datetime.now(dt.UTC)
    events = [
        {
            "uuid": str(uuid.uuid4()),
            "event": name,
            "user_id": f"reader-{i % 5}",
            "timestamp": (now - dt.timedelta(hours=3 * i)).isoformat(),
            "user_agent": IPHONE if i % 2 else DESKTOP,
            "ip": "81.2.69.160",
            "properties": {"video_style": "cinematic", "step": i},
        }
        for i, name in enumerate(["signup", "project_created", "video_rendered", "payment"] * 15)
    ]
    events_capture(events=events)
    events_flush()
    login(page, pm)
    page.goto(f"{live_asgi}/analytics/events/")
    page.wait_for_selector("#event-counts .main-svg")
    assert page.locator("#event-count").inner_text() == "60"
    page.screenshot(path=artifact("analytics-events.png"), full_page=True)
    page.fill("input[name=event]", "payment")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**event=payment**")
    assert page.locator("#event-count").inner_text() == "15"
    page.locator("table.events-table tbody tr").first.locator("a").first.click()
    page.wait_for_selector("#event-detail")
    detail = page.locator("#event-detail").inner_text()
    assert "payment" in detail and '"geo_country": "GB"' in detail
    page.screenshot(path=artifact("analytics-event-detail.png"), full_page=True)
