"""Per-API-key request rate limit (ApiKey.rate_limit_per_second, else API_KEY_RATE_LIMIT).

A one-second fixed window counted in Redis, shared by every web process. Refusals become
429 with a Retry-After header through DRF's Throttled handling.
"""

import math
import time

import redis
from django.conf import settings
from rest_framework.throttling import BaseThrottle

from core.models import ApiKey
from core.redis import redis_client


class ApiKeyRateThrottle(BaseThrottle):
    def allow_request(self, request, view) -> bool:
        key = request.auth
        if not isinstance(key, ApiKey):
            return True
        limit = key.rate_limit_per_second
        if limit is None:
            limit = settings.API_KEY_RATE_LIMIT
        if not limit:
            return True
        now = time.time()
        window = int(now)
        counter = f"ratelimit:api-key:{key.pk}:{window}"
        try:
            pipe = redis_client().pipeline(transaction=False)
            pipe.incr(counter)
            pipe.expire(counter, 2)
            used, _ = pipe.execute()
        except (redis.RedisError, OSError):
            return True  # the buffer append will report Redis being down
        self._wait = window + 1 - now
        return used <= limit

    def wait(self) -> float:
        # DRF puts ceil(wait) into Retry-After; at least one second.
        return max(1.0, math.ceil(getattr(self, "_wait", 1.0)))
