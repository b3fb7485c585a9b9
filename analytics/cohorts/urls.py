"""Page routes of saved cohorts (mounted by analytics/urls.py)."""

from django.urls import path

from analytics.cohorts import views

urlpatterns = [
    path("cohorts/", views.cohorts_page, name="cohorts"),
    path("cohorts/<int:pk>/", views.cohort_page, name="cohort"),
]
