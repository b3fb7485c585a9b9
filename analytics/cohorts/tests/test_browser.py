"""A product manager's cohort journey in headless Chromium: the list, a CSV upload, one
cohort's page with its size chart, and the funnel of its members; screenshots of each page."""

import datetime as dt
import io

import pytest
from django.core.cache import cache

from analytics.cohorts.demo import seed
from analytics.simulation import GenerationSpec, generate

pytestmark = [pytest.mark.browser]


@pytest.fixture
def demo_cohorts(analytics_store):
    cache.clear()
    end = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    generate(GenerationSpec(users=600, months=3, seed=3, end=end), db=analytics_store)
    seed(stdout=io.StringIO())


def test_pm_uploads_a_cohort_and_filters_a_funnel(
    page, live_asgi, login, pm, artifact, demo_cohorts, tmp_path
):
    login(page, pm)
    page.goto(f"{live_asgi}/analytics/cohorts/")
    assert page.locator("#cohorts tbody tr").count() == 4
    page.screenshot(path=artifact("cohorts-list.png"), full_page=True)

    upload = tmp_path / "beta.csv"
    upload.write_text("user_id\nu-1\nu-2\n\nu-3\n")
    form = page.locator("form[enctype='multipart/form-data']")
    form.locator("input[name=name]").fill("Beta testers")
    form.locator("input[name=file]").set_input_files(str(upload))
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/analytics/cohorts/*/")
    assert "Beta testers" in page.content() and "u-3" in page.content()

    page.goto(f"{live_asgi}/analytics/cohorts/")
    page.get_by_role("link", name="Active renderers").click()
    page.wait_for_selector("#cohort-sizes .main-svg")
    page.screenshot(path=artifact("cohorts-detail.png"), full_page=True)

    page.get_by_role("link", name="Funnel").last.click()
    page.wait_for_selector("#funnel-steps .main-svg")
    assert (
        page.locator("select[name=in_cohort] option[selected]").inner_text() == "Active renderers"
    )
    page.screenshot(path=artifact("cohorts-funnel.png"), full_page=True)
