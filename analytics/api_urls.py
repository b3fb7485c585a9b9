"""API routes of the analytics area, mounted under /api/."""

from django.urls import path

from analytics import api_events, api_insights

urlpatterns: list = [
    path("events/", api_events.EventsApi.as_view(), name="api-events"),
    path(
        "users/<str:user_id>/insights/",
        api_insights.UserInsightApi.as_view(),
        name="api-user-insights",
    ),
    path(
        "insights/models/",
        api_insights.ModelVersionListApi.as_view(),
        name="api-insight-models",
    ),
    path(
        "insights/models/<str:kind>/retrain/",
        api_insights.RetrainApi.as_view(),
        name="api-insight-retrain",
    ),
    path("insights/runs/", api_insights.RunListApi.as_view(), name="api-insight-runs"),
    path(
        "insights/runs/<int:pk>/",
        api_insights.RunDetailApi.as_view(),
        name="api-insight-run",
    ),
]
