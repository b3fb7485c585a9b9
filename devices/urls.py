"""Page routes of the devices area (its API routes are in api_urls.py)."""

from django.urls import path

from devices import views

app_name = "devices"

urlpatterns = [
    path("", views.index, name="index"),
    path("<int:pk>/", views.device_detail, name="device"),
    path("<int:pk>/deactivate/", views.device_deactivate, name="deactivate"),
    path("<int:pk>/send-test/", views.device_send_test, name="send-test"),
    path("broadcasts/", views.broadcasts, name="broadcasts"),
    path("broadcasts/<int:pk>/", views.broadcast_detail, name="broadcast"),
    path("notifications/<int:pk>/", views.notification_detail, name="notification"),
]
