"""A loopback webhook receiver for the tests: rollout hooks (a Flagger-style load tester or
gate) and chat notifications (a Slack incoming webhook answers `ok` as text/plain).

It records every POST and answers according to the path:
- `/ok...` 200, `/slack...` 200 with the body `ok` (what Slack answers);
- `/deny...` 403 (a gate that says no, a failing check);
- `/flaky/<n>...` 503 for the first n calls to that path, then 200;
- `/slow...` waits `slow_seconds` then 200;
- `/redirect...` 302 to `/ok` (which a guarded client must not follow);
- `/gate...` 200 once `open_gate()` was called, 423 before (Flagger's gate semantics).
It cannot show TLS, proxies or a real chat service's formatting; the tests say so.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from testing.servers import free_port


class WebhookReceiver:
    def __init__(self, *, slow_seconds: float = 2.0):
        self.calls: list[dict] = []
        self.slow_seconds = slow_seconds
        self.gate_open = False
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw or b"null")
                except ValueError:
                    body = raw.decode(errors="replace")
                status, text, headers = receiver._answer(self.path, body, dict(self.headers))
                data = text.encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _answer(self, path: str, body, headers: dict) -> tuple[int, str, dict]:
        with self._lock:
            self.calls.append({"path": path, "body": body, "headers": headers})
            self._counts[path] = self._counts.get(path, 0) + 1
            count = self._counts[path]
        if path.startswith("/slack"):
            return 200, "ok", {}
        if path.startswith("/deny"):
            return 403, "load test failed: p95 above 500 ms", {}
        if path.startswith("/flaky/"):
            failures = int(path.split("/")[2])
            return (503, "busy", {}) if count <= failures else (200, "ok", {})
        if path.startswith("/slow"):
            time.sleep(self.slow_seconds)
            return 200, "ok", {}
        if path.startswith("/redirect"):
            return 302, "", {"Location": f"{self.url}/ok"}
        if path.startswith("/gate"):
            return (200, "approved", {}) if self.gate_open else (423, "not approved yet", {})
        return 200, "ok", {}

    def open_gate(self) -> None:
        self.gate_open = True

    def bodies(self, prefix: str) -> list:
        with self._lock:
            return [c["body"] for c in self.calls if c["path"].startswith(prefix)]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
