"""Page routes of the events explorer (mounted by analytics/urls.py)."""

from django.urls import path

from analytics.events import views

urlpatterns = [
    path("events/", views.events, name="events"),
]
