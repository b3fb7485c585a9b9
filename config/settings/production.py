"""Production (`DEBUG=0`): secrets and hosts must be given, HTTPS everywhere, no demo data."""

from django.core.exceptions import ImproperlyConfigured

from config.settings.base import *  # noqa: F403
from config.settings.base import env


def _required(name: str) -> str:
    value = env.str(name, default="")
    if not value:
        raise ImproperlyConfigured(f"{name} must be set when DEBUG=0 (see README, Configuration)")
    return value


DEMO_MODE = False
SECRET_KEY = _required("SECRET_KEY")
# /metrics and the workers' metrics port name every queue, task and business figure.
METRICS_TOKEN = _required("METRICS_TOKEN")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[]) or _required("ALLOWED_HOSTS").split(",")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^ready$", r"^metrics$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
