"""Request body limits at the ASGI level, per route, before Django buffers anything.

Django's ASGI handler reads the whole body into memory (or a spooled file) before a view runs,
and DRF's JSON parser ignores DATA_UPLOAD_MAX_MEMORY_SIZE. This middleware answers 413 from
`Content-Length` alone, without reading the body, and counts the bytes of a body without one
(chunked) as they stream, stopping at the limit: the process never holds more than the limit.

The table is one setting other areas extend (`REQUEST_BODY_LIMITS`: `(path regex, bytes)`, the
first match wins; `REQUEST_BODY_LIMIT` for every other path).
"""

import json
import re
from functools import lru_cache

from django.conf import settings


@lru_cache(maxsize=16)
def _compiled(table: tuple) -> list[tuple[re.Pattern, int]]:
    return [(re.compile(pattern), int(limit)) for pattern, limit in table]


def body_limit_for(path: str) -> int:
    for pattern, limit in _compiled(tuple(tuple(row) for row in settings.REQUEST_BODY_LIMITS)):
        if pattern.search(path):
            return limit
    return settings.REQUEST_BODY_LIMIT


async def _refuse(send, status: int, detail: str) -> None:
    error = "too_large" if status == 413 else "malformed"
    body = json.dumps({"error": error, "detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = body_limit_for(scope["path"])
        declared = None
        for name, value in scope.get("headers", []):
            if name.lower() == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    return await _refuse(send, 400, "Content-Length is not a number")
        too_large = f"the body is larger than {limit} bytes, the limit of {scope['path']}"
        if declared is not None and declared > limit:
            return await _refuse(send, 413, too_large)

        received = 0
        exceeded = False
        started = False

        async def counted_receive():
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Django's handler stops reading on a disconnect and answers nothing;
                    # the 413 is sent below.
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def watched_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counted_receive, watched_send)
        if exceeded and not started:
            await _refuse(send, 413, too_large)
