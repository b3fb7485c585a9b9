"""API routes of the product analyses (mounted under /api/ by analytics/api_urls.py)."""

from django.urls import path

from analytics.product import api

urlpatterns = [
    path("analytics/overview/", api.OverviewApi.as_view(), name="analytics-overview"),
    path("analytics/trends/", api.TrendsApi.as_view(), name="analytics-trends"),
    path("analytics/lifecycle/", api.LifecycleApi.as_view(), name="analytics-lifecycle"),
    path("analytics/stickiness/", api.StickinessApi.as_view(), name="analytics-stickiness"),
    path("analytics/paths/", api.PathsApi.as_view(), name="analytics-paths"),
    path("analytics/paths/users/", api.PathUsersApi.as_view(), name="analytics-paths-users"),
    path("analytics/retention/", api.RetentionApi.as_view(), name="analytics-retention"),
    path(
        "analytics/retention/users/",
        api.RetentionUsersApi.as_view(),
        name="analytics-retention-users",
    ),
    path("analytics/funnel/", api.FunnelApi.as_view(), name="analytics-funnel"),
    path(
        "analytics/funnel/dropped/",
        api.FunnelDroppedApi.as_view(),
        name="analytics-funnel-dropped",
    ),
    path("analytics/revenue/", api.RevenueApi.as_view(), name="analytics-revenue"),
    path(
        "analytics/feature-usage/",
        api.FeatureUsageApi.as_view(),
        name="analytics-feature-usage",
    ),
    path(
        "analytics/satisfaction/",
        api.SatisfactionApi.as_view(),
        name="analytics-satisfaction",
    ),
]
