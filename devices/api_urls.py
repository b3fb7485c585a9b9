"""API routes of the devices area, mounted under /api/."""

from django.urls import path

from devices import api, broadcast_api

urlpatterns = [
    path("devices/", api.DeviceRegisterApi.as_view(), name="api-device-register"),
    path("devices/unregister/", api.DeviceUnregisterApi.as_view(), name="api-device-unregister"),
    path("devices/vapid-public-key/", api.VapidPublicKeyApi.as_view(), name="api-vapid-public-key"),
    path("notifications/", api.NotificationCreateApi.as_view(), name="api-notification-create"),
    path("devices/broadcasts/", broadcast_api.BroadcastListApi.as_view(), name="api-broadcasts"),
    path(
        "devices/broadcasts/<int:pk>/",
        broadcast_api.BroadcastDetailApi.as_view(),
        name="api-broadcast",
    ),
    path(
        "devices/broadcasts/<int:pk>/send/",
        broadcast_api.BroadcastSendApi.as_view(),
        name="api-broadcast-send",
    ),
    path(
        "notifications/<int:pk>/",
        api.NotificationDetailApi.as_view(),
        name="api-notification-detail",
    ),
]
