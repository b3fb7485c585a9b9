"""Page routes of product-metric alerts (mounted by analytics/urls.py)."""

from django.urls import path

from analytics.alerts import views

urlpatterns = [
    path("alerts/", views.alerts_page, name="metric-alerts"),
    path("alerts/<int:pk>/", views.alert_page, name="metric-alert"),
]
