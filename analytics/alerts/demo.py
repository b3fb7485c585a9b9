"""Demo product-metric alerts (analytics/demo.py runs it), checked once so the pages show a
state, a value and, for one of them, an episode."""

from __future__ import annotations

from analytics.alerts import services
from analytics.alerts.models import MetricAlert

DEMO_ALERTS = [
    {
        "name": "Weekly renderers fell 10 %",
        "params": {"series": "video_rendered", "math": "unique_users", "period": "week"},
        "condition": "decrease",
        "threshold": 10,
    },
    {
        "name": "Daily signups above 20",
        "params": {"series": "signup", "period": "day"},
        "condition": "above",
        "threshold": 20,
    },
    {
        "name": "Render completion under 90 %",
        "params": {
            "series": "video_rendered,video_completed",
            "period": "week",
            "formula": "B/A",
        },
        "series": "formula",
        "condition": "below",
        "threshold": 0.9,
    },
]


def seed(*, stdout) -> None:
    made = 0
    for spec in DEMO_ALERTS:
        alert = MetricAlert.objects.filter(name=spec["name"]).first()
        if alert is None:
            alert = services.alert_create(by="demo", **spec)
            made += 1
        services.alert_check(alert_id=alert.pk)
    if made:
        stdout.write(f"analytics: {made} demo metric alerts checked")
