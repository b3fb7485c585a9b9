"""API routes of the insight models (mounted under /api/ by analytics/api_urls.py)."""

from django.urls import path

from analytics.insights import api

urlpatterns = [
    path("users/<str:user_id>/insights/", api.UserInsightApi.as_view(), name="api-user-insights"),
    path("insights/models/", api.ModelVersionListApi.as_view(), name="api-insight-models"),
    path(
        "insights/models/<str:kind>/retrain/",
        api.RetrainApi.as_view(),
        name="api-insight-retrain",
    ),
    path("insights/runs/", api.RunListApi.as_view(), name="api-insight-runs"),
    path("insights/runs/<int:pk>/", api.RunDetailApi.as_view(), name="api-insight-run"),
]
