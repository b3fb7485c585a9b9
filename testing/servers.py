"""Real servers and workers on loopback, for tests and benchmarks: a free port, the ASGI app
served by uvicorn in a thread (sharing the caller's process, and so its database), and a
Celery worker (threads) consuming every queue."""

import contextlib
import socket
import threading
import time
from collections.abc import Iterator


def free_port() -> int:
    """A loopback TCP port nothing listens on (the kernel picks it from its ephemeral range)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_asgi_in_thread(*, start_timeout: float = 20.0):
    """Start uvicorn on a free loopback port; returns (server, thread, port).

    Stop it with `server.should_exit = True` and `thread.join()`."""
    import uvicorn

    from config.asgi import application

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            application, host="127.0.0.1", port=port, lifespan="off", log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.started:
        raise RuntimeError("uvicorn did not start")
    return server, thread, port


@contextlib.contextmanager
def celery_worker_running(*, concurrency: int = 2, queues=None, **options) -> Iterator:
    """A real Celery worker (threads) on the configured broker, consuming `queues` (default:
    every queue); `options` go to celery's `start_worker` as they are."""
    from celery.contrib.testing.worker import start_worker

    from config.celery import app
    from core.queues import Queue

    with start_worker(
        app,
        pool="threads",
        concurrency=concurrency,
        perform_ping_check=False,
        queues=queues or [q.value for q in Queue],
        **{"shutdown_timeout": 30, **options},
    ) as worker:
        yield worker


@contextlib.contextmanager
def static_directory_served(directory) -> Iterator[str]:
    """Serve a directory over HTTP on a free loopback port (an app's own origin in browser
    tests); yields its base URL."""
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
