"""The Alerts page in headless Chromium: an engineer reads what alerts did and reverts the
AI tier a cost optimization switched."""

import pytest

from operations.models import PlatformSetting
from operations.services import ReceivedAlert, alert_act, alert_receive

pytestmark = [pytest.mark.browser]


def _receive(name: str, fingerprint: str, status: str = "firing", **labels) -> None:
    from datetime import UTC, datetime

    received = ReceivedAlert(
        status=status,
        labels={"alertname": name, "severity": "warning", **labels},
        annotations={"summary": f"{name} from the browser test"},
        starts_at=datetime(2026, 11, 25, 6, 0, tzinfo=UTC),
        ends_at=datetime(2026, 11, 25, 6, 20, tzinfo=UTC) if status == "resolved" else None,
        fingerprint=fingerprint,
    )
    alert, _ = alert_receive(received=received)
    if alert.action:
        alert_act(alert_id=alert.pk)


def test_engineer_reverts_a_cost_optimization(page, live_asgi, login, engineer, artifact):
    _receive("HighAICost", "c057")
    _receive("HighErrorRate", "e440", service="checkout")  # no rollout running: nothing to do
    _receive("DiskAlmostFull", "d15c", device="sda")
    _receive("DiskAlmostFull", "d15c", status="resolved", device="sda")
    assert PlatformSetting.objects.get(key="ai_quality_tier").value == "standard"

    login(page, engineer)
    page.get_by_role("link", name="Alerts").click()
    page.wait_for_url("**/ops/alerts/")
    rows = page.locator("table.alerts tbody tr")
    assert rows.count() == 3
    assert "premium → standard" in page.locator("table.alerts").inner_text()
    page.screenshot(path=artifact("alerts.png"), full_page=True)

    page.get_by_role("button", name="Revert to premium").click()
    page.wait_for_url("**/ops/alerts/")
    assert "Reverted ai_quality_tier to premium" in page.locator(".messages").inner_text()
    assert PlatformSetting.objects.get(key="ai_quality_tier").value == "premium"
    assert page.get_by_role("button", name="Revert to premium").count() == 0
    page.screenshot(path=artifact("alerts-reverted.png"), full_page=True)
