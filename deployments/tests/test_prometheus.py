"""The Prometheus backend against a loopback HTTP server that answers like Prometheus' API."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from deployments.judge import NO_DATA, PASS, judge
from deployments.metrics.prometheus import PrometheusMetrics
from deployments.models import default_analysis


def vector(value):
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": {}, "value": [1764000000.0, str(value)]}],
        },
    }


EMPTY = {"status": "success", "data": {"resultType": "vector", "result": []}}


class FakePrometheus:
    """Answers /api/v1/query by the first rule whose fragment is in the query."""

    def __init__(self):
        self.rules: list[tuple[str, int, dict | str]] = []
        self.queries: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                url = urlparse(self.path)
                query = parse_qs(url.query).get("query", [""])[0]
                fake.queries.append(query)
                status, body = 200, EMPTY
                for fragment, code, answer in fake.rules:
                    if fragment in query:
                        status, body = code, answer
                        break
                raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def prom():
    fake = FakePrometheus()
    yield fake
    fake.close()


class Svc:
    name, namespace = "api-gateway", "book2video-production"


def test_reads_every_metric_with_version_labels(prom):
    prom.rules = [
        ('status=~"5.."', 200, vector(1.25)),
        ("histogram_quantile", 200, vector(212.5)),
        ("container_cpu_usage_seconds_total", 200, vector(41.0)),
        ("container_memory_working_set_bytes", 200, vector(63.5)),
        ("http_requests_total", 200, vector(88.0)),
    ]
    reading = PrometheusMetrics(prom.url, timeout=2).read(Svc, "canary")
    assert reading.values() == {
        "request_rate": 88.0,
        "error_rate": 1.25,
        "p99_ms": 212.5,
        "cpu_percent": 41.0,
        "memory_percent": 63.5,
    }
    assert reading.problems == []
    assert all('version="canary"' in q or 'pod=~"api-gateway-canary-.*"' in q for q in prom.queries)
    assert all('namespace="book2video-production"' in q for q in prom.queries)


def test_empty_error_and_nan_answers_are_no_data_never_a_pass(prom):
    prom.rules = [
        ('status=~"5.."', 200, EMPTY),
        ("histogram_quantile", 200, vector("NaN")),
        (
            "container_cpu",
            422,
            {"status": "error", "errorType": "bad_data", "error": "parse error"},
        ),
        ("container_memory", 503, "<html>down</html>"),
        ("http_requests_total", 200, vector(10)),
    ]
    backend = PrometheusMetrics(prom.url, timeout=2)
    canary = backend.read(Svc, "canary")
    assert canary.error_rate is None and canary.p99_ms is None
    assert canary.cpu_percent is None and canary.memory_percent is None
    assert any("parse error" in p for p in canary.problems)
    assert any("without JSON" in p for p in canary.problems)
    verdict = judge(default_analysis(), canary, backend.read(Svc, "stable"))
    assert verdict["verdict"] == NO_DATA


def test_unreachable_prometheus_is_no_data(prom):
    url = prom.url
    prom.close()
    reading = PrometheusMetrics(url, timeout=0.5).read(Svc, "canary")
    assert reading.empty and "unreachable" in reading.problems[0]


def test_templates_are_configurable(prom):
    prom.rules = [("my_errors", 200, vector(0.5)), ("", 200, vector(1))]
    backend = PrometheusMetrics(
        prom.url, timeout=2, queries={"error_rate": 'my_errors{svc="$service",v="$version"}'}
    )
    assert (
        backend.query_text("error_rate", Svc, "stable") == 'my_errors{svc="api-gateway",v="stable"}'
    )
    reading = backend.read(Svc, "canary")
    assert reading.error_rate == 0.5
    assert judge(default_analysis(), reading, reading)["verdict"] == PASS
