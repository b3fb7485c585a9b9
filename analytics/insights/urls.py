"""Page routes of the insight models (mounted by analytics/urls.py)."""

from django.urls import path

from analytics.insights import views

urlpatterns = [
    path("models/", views.models_page, name="models"),
    path("users/<str:user_id>/", views.user_page, name="user-insight"),
    path("at-risk/", views.at_risk_page, name="at-risk"),
]
