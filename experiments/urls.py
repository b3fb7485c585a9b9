"""Page routes of the experiments area (its API routes are in api_urls.py)."""

from django.urls import path

from experiments import views

app_name = "experiments"

urlpatterns = [
    path("", views.index, name="index"),
    path("holdouts/<slug:key>/", views.holdout, name="holdout"),
    path("<slug:key>/", views.detail, name="detail"),
]
