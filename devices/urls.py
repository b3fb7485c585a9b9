"""Page routes of the devices area (its API routes are in api_urls.py)."""

from django.urls import path

from devices import views

app_name = "devices"

urlpatterns = [
    path("", views.index, name="index"),
]
