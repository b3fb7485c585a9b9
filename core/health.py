"""Probes for Kubernetes: `/health` (process alive) and `/ready` (dependencies reachable)."""

import logging

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.utils.module_loading import import_string
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

log = logging.getLogger(__name__)


@never_cache
@require_GET
def health(request):
    return JsonResponse({"status": "ok"})


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_redis() -> None:
    from core.redis import redis_client

    redis_client().ping()


def readiness_checks() -> dict:
    """settings.READINESS_CHECKS resolved: each app names the check of what it depends on."""
    return {name: import_string(path) for name, path in settings.READINESS_CHECKS.items()}


@never_cache
@require_GET
def ready(request):
    failing = {}
    checks = readiness_checks()
    for name, check in checks.items():
        try:
            check()
        except Exception as exc:  # any failure of a dependency makes the process unready
            # The exception (addresses, user names, driver messages) goes to the log only:
            # /ready answers anyone, so it names the failing checks and nothing more.
            log.warning("readiness check %s failed: %s: %s", name, type(exc).__name__, exc)
            failing[name] = "unreachable"
    if failing:
        return JsonResponse(
            {"status": "unavailable", "error": "dependency_unreachable", "detail": failing},
            status=503,
        )
    return JsonResponse({"status": "ready", "checks": sorted(checks)})
