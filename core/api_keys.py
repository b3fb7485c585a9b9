"""Machine-client keys: their kinds, their scopes, and the one way to authenticate a raw key.

Two kinds, as payment and analytics platforms have them:

- a **publishable** key is safe to ship inside an app or a web page (anyone can read it
  there): it may capture events, get experiment assignments and the experiment payload,
  register and unregister the caller's own devices and read the VAPID public key;
- a **secret** key stays on servers (the video pipeline): everything a publishable key may do,
  plus creating and reading notifications and reading platform settings.

A key may be narrowed further by its `scopes` (admin, `create_api_key --scopes`): an empty
list means every scope its kind allows.

Keys travel in `X-Api-Key` (`core.auth.ApiKeyAuthentication`). SDK endpoints that receive a
publishable key somewhere else (a URL path segment such as GrowthBook's
`/api/features/<client_key>`, PostHog's `api_key` in the JSON body or the query string) call
`authenticate_publishable` and nothing else::

    from core.api_keys import Scope, authenticate_publishable

    key = authenticate_publishable(client_key, scope=Scope.EXPERIMENTS_PAYLOAD)

It raises DRF exceptions, so a view answers with the shared JSON error body on its own:
`InvalidApiKey` (401), `ScopeDenied` (403, a secret key or a key without the scope) and
`Throttled` (429 with Retry-After, the key's rate limit).
"""

from __future__ import annotations

import math
import time
from datetime import timedelta
from enum import StrEnum

from django.conf import settings
from django.db import models
from django.utils import timezone
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied, Throttled


class KeyKind(models.TextChoices):
    PUBLISHABLE = "publishable", "publishable (apps, web pages)"
    SECRET = "secret", "secret (servers only)"


class Scope(StrEnum):
    """What a key may do. Values are what admin and `create_api_key --scopes` take."""

    EVENTS_CAPTURE = "events:capture"
    EXPERIMENTS_ASSIGN = "experiments:assign"
    EXPERIMENTS_PAYLOAD = "experiments:payload"
    DEVICES = "devices"  # register/unregister own devices, read the VAPID public key
    NOTIFICATIONS = "notifications"  # create and read the key's own notifications
    SETTINGS = "settings"  # read platform settings


PUBLISHABLE_SCOPES = frozenset(
    {Scope.EVENTS_CAPTURE, Scope.EXPERIMENTS_ASSIGN, Scope.EXPERIMENTS_PAYLOAD, Scope.DEVICES}
)
KIND_SCOPES: dict[str, frozenset[Scope]] = {
    KeyKind.PUBLISHABLE: PUBLISHABLE_SCOPES,
    KeyKind.SECRET: frozenset(Scope),
}
RAW_PREFIX = {KeyKind.PUBLISHABLE: "b2v_pk_", KeyKind.SECRET: "b2v_sk_"}


class InvalidApiKey(AuthenticationFailed):
    """No active key has this value (401)."""


class ScopeDenied(PermissionDenied):
    """The key exists but may not do this (403): wrong kind or scope not granted."""


def parse_scopes(text: str) -> list[str]:
    """`a,b` -> ['a', 'b'], each checked against Scope; ValueError naming an unknown one."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    known = {s.value for s in Scope}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown scope {unknown[0]!r}; scopes are {', '.join(sorted(known))}")
    return list(dict.fromkeys(names))


def key_scopes(key) -> frozenset[Scope]:
    """The scopes a key holds: its kind's, narrowed by its own list when it has one."""
    allowed = KIND_SCOPES.get(key.kind, frozenset())
    if key.scopes:
        allowed = allowed & {Scope(s) for s in key.scopes if s in Scope._value2member_map_}
    return allowed


def require_scope(key, scope: Scope) -> None:
    if scope not in key_scopes(key):
        if scope not in KIND_SCOPES.get(key.kind, frozenset()):
            raise ScopeDenied(f"a {key.kind} key may not use {scope.value}; use a secret key")
        raise ScopeDenied(f"this key was not granted the scope {scope.value}")


# --- lookup -----------------------------------------------------------------------------

_TOUCH_EVERY = timedelta(minutes=1)
# Each process looks a key up at most once per API_KEY_CACHE_SECONDS (hot paths: events,
# assignment, registration). Only key hashes are held, never keys.
_known: dict[str, tuple[float, object | None]] = {}


def lookup(raw_key: str):
    """The active ApiKey with this raw value, or None. Marks its last use (once a minute)."""
    from core.models import ApiKey

    digest = ApiKey.hash_key(raw_key.strip())
    now = time.monotonic()
    hit = _known.get(digest)
    if hit is None or hit[0] <= now:
        if len(_known) > 10_000:  # bounded against floods of random keys
            _known.clear()
        key = ApiKey.objects.filter(key_hash=digest, is_active=True).first()
        hit = (now + settings.API_KEY_CACHE_SECONDS, key)
        _known[digest] = hit
    key = hit[1]
    if key is not None:
        wall = timezone.now()
        if key.last_used_at is None or wall - key.last_used_at > _TOUCH_EVERY:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=wall)
            key.last_used_at = wall
    return key


def forget(key_hash: str | None = None) -> None:
    """Drop cached lookups (one key's, or all) in this process."""
    if key_hash is None:
        _known.clear()
    else:
        _known.pop(key_hash, None)


# --- rate limit ---------------------------------------------------------------------------


def rate_limit_wait(key) -> float | None:
    """Count one request of `key`; None when allowed, else the seconds until the next window.

    A one-second fixed window counted in Redis, shared by every web process. The limit is the
    key's `rate_limit_per_second`, else API_KEY_RATE_LIMIT (0: none). Redis being down lets
    the request through (the capture buffer reports Redis itself)."""
    import redis

    from core.redis import redis_client

    limit = key.rate_limit_per_second
    if limit is None:
        limit = settings.API_KEY_RATE_LIMIT
    if not limit:
        return None
    now = time.time()
    window = int(now)
    counter = f"ratelimit:api-key:{key.pk}:{window}"
    try:
        pipe = redis_client().pipeline(transaction=False)
        pipe.incr(counter)
        pipe.expire(counter, 2)
        used, _ = pipe.execute()
    except (redis.RedisError, OSError):
        return None
    if used <= limit:
        return None
    return max(1.0, math.ceil(window + 1 - now))


# --- the helper for keys passed outside X-Api-Key --------------------------------------------


def authenticate_publishable(raw_key: str | None, *, scope: Scope, rate_limit: bool = True):
    """The active **publishable** ApiKey for a raw key an SDK sent outside `X-Api-Key` (a URL
    path segment, a JSON body or query `api_key`), checked for `scope` and counted against
    the key's rate limit.

    Raises (DRF exceptions, answered with the shared JSON error body):
      InvalidApiKey (401) - missing, unknown or revoked key;
      ScopeDenied (403) - a secret key (secret keys must never travel in URLs or bodies an app
        can show), or a publishable key not granted `scope`;
      Throttled (429, Retry-After) - the key's requests per second are used up
        (rate_limit=False skips the count, for a view that already counted this request).
    """
    if not raw_key or not isinstance(raw_key, str) or len(raw_key) > 200:
        raise InvalidApiKey("a publishable API key is required")
    key = lookup(raw_key)
    if key is None:
        raise InvalidApiKey("the API key is not a valid, active key")
    if key.kind != KeyKind.PUBLISHABLE:
        raise ScopeDenied(
            "only a publishable key may be sent here; never put a secret key in an app"
        )
    require_scope(key, scope)
    if rate_limit:
        wait = rate_limit_wait(key)
        if wait is not None:
            raise Throttled(wait=wait)
    return key
