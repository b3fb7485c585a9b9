"""Shared API routes, mounted under /api/."""

from django.urls import path

from platform_site import api

urlpatterns = [
    path("me/", api.MeApi.as_view(), name="api-me"),
    path("alerts/", api.AlertWebhookApi.as_view(), name="api-alerts"),
    path(
        "platform-settings/<slug:key>/",
        api.PlatformSettingApi.as_view(),
        name="api-platform-setting",
    ),
]
