"""API routes of the deployments area, mounted under /api/."""

urlpatterns: list = []
