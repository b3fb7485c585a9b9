"""Login for every page: anonymous browsers are sent to the login page.

API paths are not redirected: DRF answers them with 401/403 JSON through its permission
classes (the default needs a staff role), and machine endpoints use `X-Api-Key`.
"""

from django.conf import settings
from django.contrib.auth.views import redirect_to_login

# PostHog SDKs' wire endpoints sit at the root, where those SDKs call them (README, SDKs).
SDK_WIRE_PATHS = (
    "/batch/",
    "/capture/",
    "/e/",
    "/i/v0/e/",
    "/track/",
    "/decide/",
    "/flags/",
    "/array/",
)
PUBLIC_PREFIXES = (
    "/login/",
    "/health",
    "/ready",
    "/static/",
    "/api/",
    "/ws/",
    "/metrics",
    *SDK_WIRE_PATHS,
)


class LoginRequiredMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.user.is_authenticated and not request.path.startswith(PUBLIC_PREFIXES):
            return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
        return self.get_response(request)


class ContentSecurityPolicyMiddleware:
    """Sends CONTENT_SECURITY_POLICY on every response that does not set its own: scripts
    only from this origin's files (no inline script, no eval), nothing framed, no plugins."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        policy = settings.CONTENT_SECURITY_POLICY
        if policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy
        return response
