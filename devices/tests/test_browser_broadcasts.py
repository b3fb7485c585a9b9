"""The broadcast page in headless Chromium after a broadcast went out; a screenshot for
README."""

import io

import pytest

from devices import demo
from devices.models import Broadcast
from devices.tests.test_broadcasts import _cohort

pytestmark = [pytest.mark.browser]


def test_broadcast_page(page, live_asgi, login, pm, artifact, analytics_store):
    _cohort([f"demo-{1000 + u:06d}" for u in range(40)], name=demo.BROADCAST_COHORT)
    demo.seed(stdout=io.StringIO())
    broadcast = Broadcast.objects.get()
    login(page, pm)
    page.goto(f"{live_asgi}/devices/broadcasts/{broadcast.pk}/")
    assert "Open rate" in page.content()
    page.screenshot(path=artifact("broadcast.png"), full_page=True)
    page.goto(f"{live_asgi}/devices/broadcasts/")
    assert page.locator("#broadcasts tbody tr").count() == 1
    page.screenshot(path=artifact("broadcasts.png"), full_page=True)
