"""Page routes of dashboards (mounted by analytics/urls.py); the analytics index is the default
dashboard."""

from django.urls import path

from analytics.dashboards import views

urlpatterns = [
    path("", views.index, name="index"),
    path("dashboards/", views.dashboards_page, name="dashboards"),
    path("dashboards/pin/", views.pin, name="dashboard-pin"),
    path("dashboards/<int:pk>/", views.dashboard_page, name="dashboard"),
]
