"""Page routes of the analytics area (its API routes are in api_urls.py): one include per
sub-package."""

from django.urls import include, path

app_name = "analytics"

urlpatterns = [
    path("", include("analytics.dashboards.urls")),
    path("", include("analytics.product.urls")),
    path("", include("analytics.events.urls")),
    path("", include("analytics.insights.urls")),
    path("", include("analytics.cohorts.urls")),
    path("", include("analytics.alerts.urls")),
]
