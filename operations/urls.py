"""Operations pages, mounted under /ops/."""

from django.urls import path

from operations import views

urlpatterns = [
    path("alerts/", views.alerts, name="alerts"),
    path("alerts/<int:pk>/revert/", views.alert_revert, name="alert-revert"),
]
