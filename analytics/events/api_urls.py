"""API routes of event capture and reads (mounted under /api/ by analytics/api_urls.py)."""

from django.urls import path

from analytics.events import api

urlpatterns = [
    path("events/", api.EventsApi.as_view(), name="api-events"),
]
