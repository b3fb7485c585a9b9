"""Page routes of the deployments area (its API routes are in api_urls.py)."""

from django.urls import path

from deployments import views

app_name = "deployments"

urlpatterns = [
    path("", views.index, name="index"),
    path("services/<str:name>/rollout/", views.rollout_create, name="rollout_create"),
    path("rollouts/<int:pk>/", views.rollout_detail, name="rollout"),
    path("history/", views.history, name="history"),
]
