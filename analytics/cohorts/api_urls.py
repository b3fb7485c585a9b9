"""API routes of saved cohorts (mounted under /api/ by analytics/api_urls.py)."""

from django.urls import path

from analytics.cohorts import api

urlpatterns = [
    path("cohorts/", api.CohortListApi.as_view(), name="cohorts"),
    path("cohorts/static/", api.StaticCohortApi.as_view(), name="cohorts-static"),
    path("cohorts/upload/", api.CohortUploadApi.as_view(), name="cohorts-upload"),
    path("cohorts/<int:pk>/", api.CohortDetailApi.as_view(), name="cohort"),
    path("cohorts/<int:pk>/compute/", api.CohortComputeApi.as_view(), name="cohort-compute"),
    path("cohorts/<int:pk>/members/", api.CohortMembersApi.as_view(), name="cohort-members"),
]
