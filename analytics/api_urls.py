"""API routes of the analytics area, mounted under /api/: one include per sub-package."""

from django.urls import include, path

urlpatterns: list = [
    path("", include("analytics.events.api_urls")),
    path("", include("analytics.product.api_urls")),
    path("", include("analytics.insights.api_urls")),
    path("", include("analytics.cohorts.api_urls")),
    path("", include("analytics.dashboards.api_urls")),
    path("", include("analytics.alerts.api_urls")),
]
