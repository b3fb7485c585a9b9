"""API routes of product-metric alerts (mounted under /api/ by analytics/api_urls.py)."""

from django.urls import path

from analytics.alerts import api

urlpatterns = [
    path("analytics/alerts/", api.MetricAlertListApi.as_view(), name="analytics-metric-alerts"),
    path(
        "analytics/alerts/<int:pk>/",
        api.MetricAlertDetailApi.as_view(),
        name="analytics-metric-alert",
    ),
]
