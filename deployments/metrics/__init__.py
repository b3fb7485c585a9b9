"""Metrics backends: canary and stable samples for the judgement (`METRICS_BACKEND`)."""

from deployments.metrics.base import METRICS, MetricsBackend, Reading


def metrics_backend(name: str | None = None) -> MetricsBackend:
    from django.conf import settings

    name = name or settings.METRICS_BACKEND
    if name == "prometheus":
        from deployments.metrics.prometheus import PrometheusMetrics

        return PrometheusMetrics.from_settings()
    from deployments.metrics.simulated import SimulatedMetrics

    return SimulatedMetrics()


__all__ = ["METRICS", "MetricsBackend", "Reading", "metrics_backend"]
