"""The ASGI app (HTTP and websockets) served by uvicorn in a thread, for tests and benchmarks
that need a real server sharing their process (and so their database)."""

import socket
import threading
import time


def serve_asgi_in_thread(*, start_timeout: float = 20.0):
    """Start uvicorn on a free loopback port; returns (server, thread, port).

    Stop it with `server.should_exit = True` and `thread.join()`."""
    import uvicorn

    from platform_site.asgi import application

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
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
