"""PostHog SDKs' paths, mounted at the site root (an SDK's host is the console's URL).

These are SDK wire endpoints, not part of the public API: they speak PostHog's formats and are
left out of the OpenAPI schema (README, SDKs).
"""

from django.urls import path

from analytics.events import api

urlpatterns = [
    path(route, api.PosthogCaptureApi.as_view(), name=f"posthog-capture-{name}")
    for name, route in [
        ("batch", "batch/"),
        ("capture", "capture/"),
        ("e", "e/"),
        ("i-v0-e", "i/v0/e/"),
        ("track", "track/"),
    ]
] + [
    path("decide/", api.PosthogDecideApi.as_view(), name="posthog-decide"),
    path("flags/", api.PosthogDecideApi.as_view(), name="posthog-flags"),
    path(
        "array/<str:token>/config",
        api.PosthogRemoteConfigApi.as_view(),
        name="posthog-remote-config",
    ),
]
