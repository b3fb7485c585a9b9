"""Page routes of the analytics area (its API routes are in api_urls.py)."""

from django.urls import include, path

from analytics import views_product

app_name = "analytics"

urlpatterns = [
    path("", views_product.overview, name="index"),
    path("", include("analytics.events.urls")),
    path("retention/", views_product.retention, name="retention"),
    path("retention/users/", views_product.retention_users, name="retention-users"),
    path("funnel/", views_product.funnel, name="funnel"),
    path("funnel/dropped/", views_product.funnel_dropped, name="funnel-dropped"),
    path("revenue/", views_product.revenue, name="revenue"),
    path("feature-usage/", views_product.feature_usage, name="feature-usage"),
    path("satisfaction/", views_product.satisfaction, name="satisfaction"),
    path("", include("analytics.insights.urls")),
]
