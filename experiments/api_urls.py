"""API routes of the experiments area, mounted under /api/."""

from django.urls import path

from experiments import api

urlpatterns = [
    path("experiments/", api.ExperimentListApi.as_view(), name="api-experiments"),
    path("experiments/assign/", api.ExperimentAssignApi.as_view(), name="api-experiments-assign"),
    path("features/<str:client_key>", api.SdkFeaturesApi.as_view(), name="api-sdk-features"),
    path("holdouts/", api.HoldoutListApi.as_view(), name="api-holdouts"),
    path(
        "holdouts/<slug:key>/results/",
        api.HoldoutResultsApi.as_view(),
        name="api-holdouts-results",
    ),
    path(
        "experiments/<slug:key>/results/",
        api.ExperimentResultsApi.as_view(),
        name="api-experiments-results",
    ),
]
