"""A product manager's journey in headless Chromium: overview, retention heatmap, a cell's
users, a funnel; screenshots of each page (the retention one is README's)."""

import datetime as dt

import pytest
from django.core.cache import cache

from analytics.simulation import GenerationSpec, generate

pytestmark = [pytest.mark.browser]
END = dt.date(2024, 12, 31)


@pytest.fixture
def demo_events(analytics_store):
    cache.clear()
    # the product simulation (the demo's), ~60,000 events over 2024
    end = dt.datetime.combine(END + dt.timedelta(days=1), dt.time(), dt.UTC)
    generate(GenerationSpec(users=750, months=12, seed=3, end=end), db=analytics_store)


def test_pm_reads_retention_and_opens_a_cell(page, live_asgi, login, pm, artifact, demo_events):
    login(page, pm)
    rng = "date_from=2024-01-01&date_to=2024-12-31"
    page.goto(f"{live_asgi}/analytics/?{rng}&period=month")
    assert page.locator(".subnav").get_by_text("At-risk users").is_visible()
    page.wait_for_selector("[id$=overview-activity] .main-svg")  # the default dashboard's tile
    page.screenshot(path=artifact("analytics-overview.png"), full_page=True)

    page.goto(f"{live_asgi}/analytics/retention/?{rng}&period=month")
    page.wait_for_selector("#retention-heatmap .main-svg")
    page.wait_for_timeout(300)
    page.screenshot(path=artifact("analytics-retention.png"), full_page=True)

    # the users of a cell: follow the table link of month 1 of the first cohort
    page.locator("#table-cohorts table tbody tr").first.locator("td a").nth(1).click()
    page.wait_for_url("**/analytics/retention/users/**")
    assert "Users in this cell" in page.content()
    assert page.locator("table.data tbody tr").count() > 0

    page.goto(f"{live_asgi}/analytics/funnel/?{rng}")
    page.wait_for_selector("#funnel-steps .main-svg")
    page.screenshot(path=artifact("analytics-funnel.png"), full_page=True)
    for name in ("revenue", "feature-usage", "satisfaction"):
        page.goto(f"{live_asgi}/analytics/{name}/?{rng}&period=month")
        page.wait_for_selector(".chart .main-svg")
        page.screenshot(path=artifact(f"analytics-{name}.png"), full_page=True)


def test_pm_follows_paths_to_an_edges_users_and_excludes_from_a_funnel(
    page, live_asgi, login, pm, artifact, demo_events
):
    login(page, pm)
    rng = "date_from=2024-01-01&date_to=2024-12-31"
    page.goto(f"{live_asgi}/analytics/paths/?{rng}&start_event=signup&steps=5")
    page.wait_for_selector("#paths-sankey .main-svg")
    assert page.locator("#paths-sankey .sankey-link").count() > 3
    page.wait_for_timeout(300)
    page.screenshot(path=artifact("analytics-paths.png"), full_page=True)

    # the users on the busiest edge: its count in the edges table links to them
    page.locator("#table-edges table tbody tr").first.locator("td a").first.click()
    page.wait_for_url("**/analytics/paths/users/**")
    assert "Users on this edge" in page.content()
    assert page.locator("table.data tbody tr").count() > 0

    steps = "signup,project_created,video_rendered,subscription_started"
    page.goto(
        f"{live_asgi}/analytics/funnel/?{rng}&steps={steps}"
        "&exclusions=support_ticket:2-3&step_windows=7d,,30d"
    )
    page.wait_for_selector("#funnel-steps .main-svg")
    assert "Left out: users who did support_ticket between steps 2 and 3" in page.content()
    page.screenshot(path=artifact("analytics-funnel-exclusion.png"), full_page=True)
