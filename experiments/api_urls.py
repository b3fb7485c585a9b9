"""API routes of the experiments area, mounted under /api/."""

urlpatterns: list = []
