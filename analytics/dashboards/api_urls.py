"""API routes of dashboards (mounted under /api/ by analytics/api_urls.py)."""

from django.urls import path

from analytics.dashboards import api

urlpatterns = [
    path("analytics/dashboards/", api.DashboardListApi.as_view(), name="analytics-dashboards"),
    path(
        "analytics/dashboards/<int:pk>/",
        api.DashboardDetailApi.as_view(),
        name="analytics-dashboard",
    ),
    path(
        "analytics/dashboards/<int:pk>/tiles/",
        api.TileListApi.as_view(),
        name="analytics-dashboard-tiles",
    ),
    path(
        "analytics/dashboards/<int:pk>/tiles/order/",
        api.TileOrderApi.as_view(),
        name="analytics-dashboard-tile-order",
    ),
    path(
        "analytics/dashboards/<int:pk>/tiles/<int:tile_pk>/",
        api.TileDetailApi.as_view(),
        name="analytics-dashboard-tile",
    ),
    path(
        "analytics/dashboards/<int:pk>/refresh/",
        api.DashboardRefreshApi.as_view(),
        name="analytics-dashboard-refresh",
    ),
    path(
        "analytics/dashboards/<int:pk>/results/",
        api.DashboardResultsApi.as_view(),
        name="analytics-dashboard-results",
    ),
]
