"""Page routes of the analytics area (its API routes are in api_urls.py)."""

from django.urls import path

from analytics import views, views_events, views_insights

app_name = "analytics"

urlpatterns = [
    path("", views.index, name="index"),
    path("events/", views_events.events, name="events"),
    path("models/", views_insights.models_page, name="models"),
    path("users/<str:user_id>/", views_insights.user_page, name="user-insight"),
    path("at-risk/", views_insights.at_risk_page, name="at-risk"),
]
