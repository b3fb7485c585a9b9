"""A developer's machine and the demo (DEBUG on): demo data and logins, a fixed development
secret key, static files served from the finders, the browsable API, loopback push targets."""

from config.settings.base import *  # noqa: F403
from config.settings.base import REST_FRAMEWORK, STORAGES, env

# Demo users, the demo API key and demo data exist only here (core.demo refuses otherwise).
DEMO_MODE = True
# Not a secret: sessions of a local console only. Production refuses to start without one.
SECRET_KEY = env.str("SECRET_KEY", default="django-insecure-book2video-local-development-only")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])

STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_RENDERER_CLASSES": [
        *REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"],
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}
WEBPUSH_ALLOW_HTTP_LOOPBACK = env.bool("WEBPUSH_ALLOW_HTTP_LOOPBACK", default=True)
