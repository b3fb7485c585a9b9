"""A product manager pins a trend to a new dashboard, overrides its range and refreshes it
with a real Celery worker, watching the progress; screenshots for README."""

import datetime as dt

import pytest
from django.core.cache import cache

from analytics.dashboards import demo
from analytics.dashboards.models import Dashboard
from analytics.dashboards.services import dashboard_update, tile_add
from analytics.simulation import GenerationSpec, generate

pytestmark = [pytest.mark.browser, pytest.mark.slow]
END = dt.date(2024, 12, 31)


@pytest.fixture
def demo_events(analytics_store):
    cache.clear()
    end = dt.datetime.combine(END + dt.timedelta(days=1), dt.time(), dt.UTC)
    generate(GenerationSpec(users=400, months=12, seed=5, end=end), db=analytics_store)


def test_pm_pins_and_refreshes_a_dashboard(
    page, live_asgi, login, pm, artifact, demo_events, celery_worker
):
    login(page, pm)
    rng = "date_from=2024-10-01&date_to=2024-12-31"
    page.goto(f"{live_asgi}/analytics/trends/?series=signup,video_rendered&period=week&{rng}")
    page.wait_for_selector(".chart .main-svg")
    page.get_by_text("Pin to dashboard").click()
    page.fill("input[name=new_dashboard]", "Growth")
    page.fill("input[name=title]", "Weekly signups and renders")
    page.screenshot(path=artifact("dashboard-pin.png"), full_page=False)
    page.get_by_role("button", name="Pin with these parameters").click()
    page.wait_for_url("**/analytics/dashboards/*/")
    board = Dashboard.objects.get(name="Growth")
    # the dashboard's own range for every tile, as the settings form saves it
    dashboard_update(dashboard=board, date_from=dt.date(2024, 10, 1), date_to=END, by=pm)
    for analysis, params, title in demo.DEMO_TILES[2:]:
        tile_add(dashboard=board, analysis=analysis, params=params, title=title, by=pm)
    page.goto(f"{live_asgi}/analytics/dashboards/{board.pk}/")
    page.wait_for_selector(".tile .main-svg")
    assert page.locator(".tile").count() == 4
    page.get_by_role("button", name="Refresh all tiles").click()
    # progress shows, then the page reloads with every tile refreshed
    page.wait_for_load_state()
    page.wait_for_selector(".dashboard-refresh", state="hidden", timeout=60_000)
    board.refresh_from_db()
    assert (board.refresh_state, board.refresh_done) == ("done", 4)
    page.wait_for_selector(".tile .main-svg")
    assert "Last refresh" in page.content()
    page.screenshot(path=artifact("dashboard.png"), full_page=True)
