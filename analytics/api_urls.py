"""API routes of the analytics area, mounted under /api/."""

urlpatterns: list = []
