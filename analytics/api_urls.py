"""API routes of the analytics area, mounted under /api/."""

from django.urls import path

from analytics import api_events

urlpatterns: list = [
    path("events/", api_events.EventsApi.as_view(), name="api-events"),
]
