"""seed_demo's dashboards and metric alerts: made once, refreshed and checked, idempotent."""

import io

import pytest

from analytics.alerts.demo import seed as seed_alerts
from analytics.alerts.models import MetricAlert
from analytics.alerts.tests.test_alerts import _renders
from analytics.dashboards.demo import seed as seed_dashboards
from analytics.dashboards.models import Dashboard

pytestmark = pytest.mark.django_db


def test_demo_dashboards_and_alerts(analytics_store):
    _renders([3, 4])
    for _ in range(2):
        seed_dashboards(stdout=io.StringIO())
        seed_alerts(stdout=io.StringIO())
    growth = Dashboard.objects.get(name="Growth")
    assert growth.tiles.count() == 5 and growth.refresh_state == "done"
    assert Dashboard.objects.get(is_default=True).refreshed_at is not None
    assert MetricAlert.objects.count() == 3
    assert all(
        a.checks.count() == 2 and a.state in ("ok", "firing") for a in MetricAlert.objects.all()
    )
