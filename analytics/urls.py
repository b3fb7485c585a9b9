"""Page routes of the analytics area (its API routes are in api_urls.py)."""

from django.urls import path

from analytics import views, views_events

app_name = "analytics"

urlpatterns = [
    path("", views.index, name="index"),
    path("events/", views_events.events, name="events"),
]
