"""The first journey a newcomer makes, in headless Chromium: log in, see home, log out."""

import pytest

pytestmark = [pytest.mark.browser]


def test_engineer_logs_in_sees_home_and_logs_out(page, live_asgi, login, engineer, artifact):
    page.goto(f"{live_asgi}/")
    assert "/login/" in page.url
    page.screenshot(path=artifact("login.png"))
    login(page, engineer)
    assert page.locator("h1").inner_text().startswith("Welcome")
    assert page.locator(".badge.role-engineer").inner_text() == "engineer"
    for area in ("Deployments", "Analytics", "Experiments", "Devices"):
        assert page.locator(".mainnav").get_by_text(area).is_visible()
    page.screenshot(path=artifact("home.png"), full_page=True)
    page.get_by_text("Log out").click()
    page.wait_for_url("**/login/")
