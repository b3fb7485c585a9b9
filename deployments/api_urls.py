"""API routes of the deployments area, mounted under /api/."""

from django.urls import path

from deployments import api

urlpatterns = [
    path("services/", api.ServiceListApi.as_view(), name="api-services"),
    path("services/<str:name>/", api.ServiceDetailApi.as_view(), name="api-service"),
    path("rollouts/", api.RolloutListApi.as_view(), name="api-rollouts"),
    path("rollouts/<int:pk>/", api.RolloutDetailApi.as_view(), name="api-rollout"),
    path("rollouts/<int:pk>/pause/", api.RolloutPauseApi.as_view(), name="api-rollout-pause"),
    path("rollouts/<int:pk>/resume/", api.RolloutResumeApi.as_view(), name="api-rollout-resume"),
    path("rollouts/<int:pk>/promote/", api.RolloutPromoteApi.as_view(), name="api-rollout-promote"),
    path("rollouts/<int:pk>/abort/", api.RolloutAbortApi.as_view(), name="api-rollout-abort"),
    path("rollouts/<int:pk>/retry/", api.RolloutRetryApi.as_view(), name="api-rollout-retry"),
]
