"""Root URLconf: pages per area, the API under /api/, probes, admin and the schema."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import IsAuthenticated

from core import errors, health, views
from operations import exporter

handler400 = "core.errors.handler400"
handler403 = "core.errors.handler403"
handler404 = "core.errors.handler404"
handler500 = "core.errors.handler500"

admin.site.site_header = "book2video platform console"
admin.site.site_title = "book2video admin"

urlpatterns = [
    # Probes and the API first: machine clients' hot paths (events, assignment, devices) are
    # resolved before the pages' routes are tried. No two groups share a path, so the order
    # changes nothing else.
    path("health", health.health, name="health"),
    path("ready", health.ready, name="ready"),
    path("metrics", exporter.metrics_view, name="metrics"),
    path("api/", include("analytics.api_urls")),
    path("api/", include("experiments.api_urls")),
    path("api/", include("devices.api_urls")),
    path("api/", include("core.api_urls")),
    path("api/", include("operations.api_urls")),
    path("api/", include("deployments.api_urls")),
    # PostHog SDKs' capture and start-up paths at the root, where those SDKs call them.
    path("", include("analytics.events.wire_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="schema", permission_classes=[IsAuthenticated]
        ),
        name="api-docs",
    ),
    # Anything else under /api/ is a JSON 404, in debug mode too.
    re_path(r"^api/", errors.api_not_found),
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("ops/", include("operations.urls")),
    path("deployments/", include("deployments.urls")),
    path("analytics/", include("analytics.urls")),
    path("experiments/", include("experiments.urls")),
    path("devices/", include("devices.urls")),
]
