"""A product manager's alert in headless Chromium: the alert with its checks and episodes,
and the Alerts page listing it; screenshots for README."""

import datetime as dt

import pytest

from analytics.alerts import services
from analytics.alerts.tests.test_alerts import _renders

pytestmark = [pytest.mark.browser]


def test_alert_pages(page, live_asgi, login, pm, artifact, analytics_store):
    _renders([40, 42, 25, 26, 41, 44])
    alert = services.alert_create(
        name="Weekly renders fell 20 %",
        params={"series": "video_rendered", "period": "week"},
        condition="decrease",
        threshold=20,
        by=pm,
    )
    for week in range(2, 7):
        for day in (2, 5):
            today = dt.date(2024, 1, 1) + dt.timedelta(weeks=week, days=day)
            services.alert_check(alert_id=alert.pk, today=today)
    login(page, pm)
    page.goto(f"{live_asgi}/analytics/alerts/{alert.pk}/")
    page.wait_for_selector("#alert-values .main-svg")
    assert page.locator("#alert-events tbody tr").count() == 2
    page.screenshot(path=artifact("metric-alert.png"), full_page=True)
    page.goto(f"{live_asgi}/ops/alerts/")
    assert "Weekly renders fell 20 %" in page.content()
    page.locator("#product-alerts").screenshot(path=artifact("alerts-page-product.png"))
