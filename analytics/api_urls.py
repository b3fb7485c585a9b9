"""API routes of the analytics area, mounted under /api/."""

from django.urls import include, path

from analytics import api_product

urlpatterns: list = [
    path("", include("analytics.events.api_urls")),
    path("analytics/overview/", api_product.OverviewApi.as_view(), name="analytics-overview"),
    path("analytics/retention/", api_product.RetentionApi.as_view(), name="analytics-retention"),
    path(
        "analytics/retention/users/",
        api_product.RetentionUsersApi.as_view(),
        name="analytics-retention-users",
    ),
    path("analytics/funnel/", api_product.FunnelApi.as_view(), name="analytics-funnel"),
    path(
        "analytics/funnel/dropped/",
        api_product.FunnelDroppedApi.as_view(),
        name="analytics-funnel-dropped",
    ),
    path("analytics/revenue/", api_product.RevenueApi.as_view(), name="analytics-revenue"),
    path(
        "analytics/feature-usage/",
        api_product.FeatureUsageApi.as_view(),
        name="analytics-feature-usage",
    ),
    path(
        "analytics/satisfaction/",
        api_product.SatisfactionApi.as_view(),
        name="analytics-satisfaction",
    ),
    path("", include("analytics.insights.api_urls")),
]
