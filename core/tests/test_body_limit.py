"""Body limits at the ASGI level: a body over its route's limit is refused before it is read
(Content-Length) or as soon as the counted stream passes the limit (chunked)."""

import asyncio
import json
import tracemalloc

import pytest

from config.asgi import application

MB = 1024 * 1024
CHUNK = 64 * 1024


async def _call(path: str, *, total: int, content_length: bool):
    """POST `total` bytes to the real ASGI application in 64 KB chunks made on demand; returns
    (status, json body, bytes the application pulled from the client)."""
    pulled = 0
    sent = []
    headers = [(b"content-type", b"application/json"), (b"x-api-key", b"b2v_pk_nope")]
    if content_length:
        headers.append((b"content-length", str(total).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }

    async def receive():
        nonlocal pulled
        if pulled >= total:
            # A client that sent everything waits for the answer (Django listens for a
            # disconnect while the view runs and cancels this wait when it has answered).
            await asyncio.sleep(60)
            return {"type": "http.disconnect"}
        size = min(CHUNK, total - pulled)
        pulled += size
        return {"type": "http.request", "body": b"x" * size, "more_body": pulled < total}

    async def send(message):
        sent.append(message)

    await application(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body), pulled


@pytest.mark.asyncio
async def test_a_50_mb_body_with_content_length_is_refused_before_it_is_read():
    tracemalloc.start()
    status, body, pulled = await _call("/api/events/", total=50 * MB, content_length=True)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert status == 413 and body["error"] == "too_large"
    assert pulled == 0  # not one byte read
    assert peak < 5 * MB  # memory stays flat


@pytest.mark.asyncio
async def test_a_50_mb_chunked_body_is_cut_at_the_routes_limit():
    tracemalloc.start()
    status, body, pulled = await _call("/api/events/", total=50 * MB, content_length=False)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert status == 413 and "5242880" in body["detail"]
    assert pulled <= 5 * MB + CHUNK  # reading stopped at the limit
    assert peak < 20 * MB  # never the 50 MB


@pytest.mark.asyncio
async def test_other_routes_have_the_small_default_limit(settings):
    status, _, pulled = await _call("/api/devices/", total=2 * MB, content_length=True)
    assert status == 413 and pulled == 0
    status, _, pulled = await _call("/api/devices/", total=2 * MB, content_length=False)
    assert status == 413 and pulled <= settings.REQUEST_BODY_LIMIT + CHUNK


def test_the_table_is_one_setting_other_areas_extend(settings):
    from core.body_limit import body_limit_for

    assert body_limit_for("/api/events/") == 5 * MB
    assert body_limit_for("/batch/") == 5 * MB
    assert body_limit_for("/api/devices/") == settings.REQUEST_BODY_LIMIT
    settings.REQUEST_BODY_LIMITS = [*settings.REQUEST_BODY_LIMITS, (r"^/api/uploads/", 50 * MB)]
    assert body_limit_for("/api/uploads/video") == 50 * MB


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_body_within_the_limit_reaches_the_view():
    for content_length in (True, False):
        status, body, pulled = await _call(
            "/api/events/", total=1000, content_length=content_length
        )
        assert status == 401 and body["error"] == "not_authenticated"  # the view answered
        assert pulled == 1000
