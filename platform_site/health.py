"""Probes for Kubernetes: `/health` (process alive) and `/ready` (dependencies reachable)."""

import logging

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

log = logging.getLogger(__name__)


@never_cache
@require_GET
def health(request):
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_redis() -> None:
    from platform_site.redis import redis_client

    redis_client().ping()


def _check_store() -> None:
    from analytics.store import store

    store().ping()


CHECKS = {"database": _check_database, "redis": _check_redis, "analytics_store": _check_store}


@never_cache
@require_GET
def ready(request):
    failing = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as exc:  # any failure of a dependency makes the process unready
            log.warning("readiness check %s failed: %s", name, exc)
            failing[name] = f"{type(exc).__name__}: {exc}"[:300]
    if failing:
        return JsonResponse(
            {"status": "unavailable", "error": "dependency_unreachable", "detail": failing},
            status=503,
        )
    return JsonResponse({"status": "ready", "checks": sorted(CHECKS)})
