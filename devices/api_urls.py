"""API routes of the devices area, mounted under /api/."""

urlpatterns: list = []
