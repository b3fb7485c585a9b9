"""Prometheus HTTP API: one instant query per template and version.

The `prometheus` template kind renders a template's PromQL with Flagger's placeholders
(`{{ namespace }}`, `{{ service }}`, `{{ target }}`, `{{ version }}`, `{{ image_tag }}`,
`{{ interval }}`; metrics/templates.py) and asks the metrics backend for its value. An empty
result, NaN, an error answer or a timeout leaves that template without data (never a pass).
"""

import math

import httpx
from django.conf import settings

from deployments.metrics.base import METRICS, Reading
from deployments.metrics.templates import (
    DEFAULT_QUERIES,
    PLACEHOLDERS,
    MeasureContext,
    Measurement,
    from_dollar_syntax,
    placeholder_problems,
    render,
)


def query_values(service, version: str, template: dict, *, image_tag: str = "") -> dict:
    """What the placeholders of `template` stand for when measuring `version` of `service`."""
    from deployments.cluster import canary_name, stable_name

    target = canary_name(service.name) if version == "canary" else stable_name(service.name)
    values = {
        "namespace": service.namespace,
        "service": service.name,
        "target": target,
        "version": version,
        "image_tag": image_tag,
        "interval": template.get("interval") or "1m",
    }
    assert set(values) == set(PLACEHOLDERS)
    return values


class PrometheusMetrics:
    def __init__(self, base_url: str, *, timeout: float, queries: dict | None = None):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.queries = {
            **DEFAULT_QUERIES,
            **{k: from_dollar_syntax(v) for k, v in (queries or {}).items()},
        }

    @classmethod
    def from_settings(cls) -> "PrometheusMetrics":
        return cls(
            settings.PROMETHEUS_URL,
            timeout=settings.PROMETHEUS_TIMEOUT_SECONDS,
            queries=settings.PROMETHEUS_QUERIES,
        )

    def query_text(self, metric: str, service, version: str, *, interval: str = "1m") -> str:
        template = {"query": self.queries[metric], "interval": interval}
        return render(template["query"], **query_values(service, version, template))

    def read(self, service, version: str) -> Reading:
        """The built-in metrics of `version` (the queries of PROMETHEUS_QUERIES)."""
        reading = Reading()
        with httpx.Client(base_url=self.base_url, timeout=self.timeout) as http:
            for metric in METRICS:
                value, problem = self._instant(http, self.query_text(metric, service, version))
                setattr(reading, metric, value)
                if problem:
                    reading.problems.append(f"{metric} ({version}): {problem}")
        return reading

    def query_templates(
        self, service, version: str, templates: list[dict], *, image_tag: str = ""
    ) -> dict[str, tuple[float | None, str]]:
        """Each template's value for `version`: {name: (value or None, problem)}."""
        out = {}
        with httpx.Client(base_url=self.base_url, timeout=self.timeout) as http:
            for template in templates:
                values = query_values(service, version, template, image_tag=image_tag)
                out[template["name"]] = self._instant(http, render(template["query"], **values))
        return out

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


class PrometheusKind:
    """Templates measured by the metrics backend: PromQL on Prometheus; on the simulated
    backend (or any backend with only `read`), the built-in metrics by template name."""

    label = "Prometheus query (PromQL template)"

    def validate(self, template: dict) -> dict[str, str]:
        query = (template.get("query") or "").strip()
        if not query:
            return {"query": "a prometheus template needs a PromQL query"}
        if len(query) > 4000:
            return {"query": "at most 4000 characters"}
        problems = placeholder_problems(query)
        return {"query": "; ".join(problems)} if problems else {}

    def measure(self, templates: list[dict], context: MeasureContext) -> dict[str, Measurement]:
        rollout, service, backend = context.rollout, context.service, context.backend
        tags = {"canary": rollout.image_tag, "stable": rollout.from_tag or service.stable_tag}
        values: dict[str, dict] = {}
        for version, tag in tags.items():
            if hasattr(backend, "query_templates"):
                values[version] = backend.query_templates(
                    service, version, templates, image_tag=tag
                )
            else:
                values[version] = _from_reading(backend, service, version, templates, context)
        out = {}
        for template in templates:
            name = template["name"]
            canary, canary_problem = values["canary"][name]
            stable, stable_problem = values["stable"][name]
            problems = [
                f"{version}: {problem}"
                for version, problem in (("canary", canary_problem), ("stable", stable_problem))
                if problem
            ]
            out[name] = Measurement(canary=canary, stable=stable, problems=problems)
        return out


def _from_reading(backend, service, version: str, templates: list[dict], context) -> dict:
    """A backend that reads the built-in metrics (the simulated cluster): one read per version
    and tick, each template served by its name."""
    key = ("reading", version)
    if key not in context.cache:
        context.cache[key] = backend.read(service, version)
    reading: Reading = context.cache[key]
    out = {}
    for template in templates:
        name = template["name"]
        if name not in METRICS:
            out[name] = (
                None,
                f"the {type(backend).__name__} backend serves only the built-in metrics "
                f"({', '.join(METRICS)}); PromQL needs METRICS_BACKEND=prometheus",
            )
        elif getattr(reading, name) is None:
            out[name] = (None, "; ".join(reading.problems) or "no data")
        else:
            out[name] = (getattr(reading, name), "")
    return out
