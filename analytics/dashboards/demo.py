"""Demo dashboards (analytics/demo.py runs it): the default overview and a growth board,
refreshed here so their tiles are cached before anyone opens them."""

from __future__ import annotations

from analytics.dashboards import services
from analytics.dashboards.models import Dashboard

DEMO_NAME = "Growth"
DEMO_TILES = [
    (
        "trends",
        {
            "series": "signup,video_rendered",
            "math": "unique_users",
            "period": "week",
            "compare": "previous",
        },
        "Weekly signups and renderers vs the previous range",
    ),
    (
        "trends",
        {"series": "video_rendered", "period": "week", "breakdown": "video_style"},
        "Renders by video style",
    ),
    (
        "funnel",
        {"steps": "signup,project_created,video_rendered,subscription_started"},
        "Signup to paid",
    ),
    ("lifecycle", {"event": "video_rendered", "period": "week"}, "Renderer lifecycle"),
    ("stickiness", {"event": "session_start"}, "Days a week with a session"),
]


def seed(*, stdout) -> None:
    default = services.dashboard_default()
    growth = Dashboard.objects.filter(name=DEMO_NAME).first()
    if growth is None:
        growth = services.dashboard_create(
            name=DEMO_NAME,
            description="Acquisition and activation at a glance (demo)",
            last_days=90,
            by="demo",
        )
        for analysis, params, title in DEMO_TILES:
            services.tile_add(
                dashboard=growth, analysis=analysis, params=params, title=title, by="demo"
            )
    for dashboard in (default, growth):
        done = services.dashboard_refresh(dashboard_id=dashboard.pk)
        stdout.write(
            f"analytics: dashboard {done.name!r} refreshed ({done.refresh_done} tiles, "
            f"{done.refresh_failed} failed)"
        )
