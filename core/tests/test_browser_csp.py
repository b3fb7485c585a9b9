"""Every page passes the strict Content-Security-Policy in headless Chromium: no inline script,
no eval, nothing from elsewhere (a violation is reported by the browser and fails the test)."""

import pytest

pytestmark = [pytest.mark.browser]

PAGES = [
    "/",
    "/deployments/",
    "/analytics/",
    "/analytics/events/",
    "/analytics/dashboards/",
    "/analytics/alerts/",
    "/devices/broadcasts/",
    "/analytics/at-risk/",
    "/experiments/",
    "/devices/",
    "/admin/",
    "/admin/platform_site/apikey/",
    "/api/docs/",
]


def test_pages_pass_the_content_security_policy(page, live_asgi, login, admin_user, artifact):
    violations = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => "
        "console.error('Content Security Policy violation: ' + e.violatedDirective + ' ' + "
        "e.blockedURI))"
    )
    login(page, admin_user)
    for path in PAGES:
        response = page.goto(f"{live_asgi}{path}")
        assert response.status < 500, path
        assert "script-src 'self'" in response.headers["content-security-policy"], path
        page.wait_for_load_state("networkidle")
        assert violations == [], (path, violations)
    page.screenshot(path=artifact("csp-api-docs.png"))
    # The policy is really enforced: an inline script is refused.
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.x = 1';"
        " document.body.appendChild(s); }"
    )
    page.wait_for_timeout(300)
    assert page.evaluate("() => window.x") is None
    assert any("script-src" in v for v in violations)
