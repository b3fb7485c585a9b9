"""Operations API routes, mounted under /api/."""

from django.urls import path

from operations import api

urlpatterns = [
    path("alerts/", api.AlertWebhookApi.as_view(), name="api-alerts"),
    path(
        "platform-settings/<slug:key>/",
        api.PlatformSettingApi.as_view(),
        name="api-platform-setting",
    ),
]
