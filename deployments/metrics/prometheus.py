"""Prometheus HTTP API: one instant query per metric and version, from PromQL templates.

Templates use `$namespace`, `$service` and `$version` (the pods' `version` label). An empty
result, NaN, an error answer or a timeout leaves that metric without data (never a pass).
"""

import math
from string import Template

import httpx
from django.conf import settings

from deployments.metrics.base import METRICS, Reading

_SEL = 'namespace="$namespace",app="$service",version="$version"'
_POD = 'namespace="$namespace",pod=~"$service-$version-.*",container!=""'
DEFAULT_QUERIES = {
    "request_rate": f"sum(rate(http_requests_total{{{_SEL}}}[1m]))",
    "error_rate": (
        f'100 * sum(rate(http_requests_total{{{_SEL},status=~"5.."}}[1m]))'
        f" / sum(rate(http_requests_total{{{_SEL}}}[1m]))"
    ),
    "p99_ms": (
        "1000 * histogram_quantile(0.99, sum by (le) "
        f"(rate(http_request_duration_seconds_bucket{{{_SEL}}}[1m])))"
    ),
    "cpu_percent": (
        f"100 * sum(rate(container_cpu_usage_seconds_total{{{_POD}}}[1m]))"
        f' / sum(kube_pod_container_resource_limits{{{_POD},resource="cpu"}})'
    ),
    "memory_percent": (
        f"100 * sum(container_memory_working_set_bytes{{{_POD}}})"
        f' / sum(kube_pod_container_resource_limits{{{_POD},resource="memory"}})'
    ),
}


class PrometheusMetrics:
    def __init__(self, base_url: str, *, timeout: float, queries: dict | None = None):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.queries = {**DEFAULT_QUERIES, **(queries or {})}

    @classmethod
    def from_settings(cls) -> "PrometheusMetrics":
        return cls(
            settings.PROMETHEUS_URL,
            timeout=settings.PROMETHEUS_TIMEOUT_SECONDS,
            queries=settings.PROMETHEUS_QUERIES,
        )

    def query_text(self, metric: str, service, version: str) -> str:
        return Template(self.queries[metric]).safe_substitute(
            namespace=service.namespace, service=service.name, version=version
        )

    def read(self, service, version: str) -> Reading:
        reading = Reading()
        with httpx.Client(base_url=self.base_url, timeout=self.timeout) as http:
            for metric in METRICS:
                value, problem = self._instant(http, self.query_text(metric, service, version))
                setattr(reading, metric, value)
                if problem:
                    reading.problems.append(f"{metric} ({version}): {problem}")
        return reading

    @staticmethod
    def _instant(http: httpx.Client, query: str) -> tuple[float | None, str]:
        try:
            response = http.get("/api/v1/query", params={"query": query})
        except httpx.HTTPError as exc:
            return None, f"Prometheus unreachable: {type(exc).__name__}"
        try:
            body = response.json()
        except ValueError:
            return None, f"Prometheus answered {response.status_code} without JSON"
        if response.status_code != 200 or body.get("status") != "success":
            return None, f"Prometheus error {response.status_code}: {body.get('error', 'unknown')}"
        result = body.get("data", {}).get("result") or []
        if not result:
            return None, "no data"
        try:
            value = float(result[0]["value"][1])
        except (KeyError, IndexError, TypeError, ValueError):
            return None, "unreadable result"
        if math.isnan(value) or math.isinf(value):
            return None, "no data (NaN)"
        return value, ""
