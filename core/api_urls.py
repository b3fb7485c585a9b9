"""Core API routes, mounted under /api/."""

from django.urls import path

from core import api

urlpatterns = [
    path("me/", api.MeApi.as_view(), name="api-me"),
]
