"""Page routes of the product analyses (mounted by analytics/urls.py)."""

from django.urls import path

from analytics.product import (
    funnels,
    lifecycle,
    overview,
    paths,
    retention,
    revenue,
    satisfaction,
    trends,
    usage,
)

urlpatterns = [
    path("overview/", overview.page, name="overview"),
    path("trends/", trends.page, name="trends"),
    path("lifecycle/", lifecycle.lifecycle_page, name="lifecycle"),
    path("stickiness/", lifecycle.stickiness_page, name="stickiness"),
    path("paths/", paths.page, name="paths"),
    path("paths/users/", paths.users_page, name="paths-users"),
    path("retention/", retention.page, name="retention"),
    path("retention/users/", retention.users_page, name="retention-users"),
    path("funnel/", funnels.page, name="funnel"),
    path("funnel/dropped/", funnels.dropped_page, name="funnel-dropped"),
    path("revenue/", revenue.page, name="revenue"),
    path("feature-usage/", usage.page, name="feature-usage"),
    path("satisfaction/", satisfaction.page, name="satisfaction"),
]
