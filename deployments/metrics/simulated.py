"""Metrics read from the simulated cluster's per-version model (see cluster/simulated.py)."""

from django.conf import settings

from core import event_store
from deployments.cluster.simulated import SimulatedCluster, product_events
from deployments.metrics.base import Reading


class SimulatedMetrics:
    def __init__(self, cluster: SimulatedCluster | None = None):
        self.cluster = cluster or SimulatedCluster()

    def read(self, service, version: str) -> Reading:
        values = self.cluster.sample(service, version)
        if values is None:
            return Reading(problems=[f"the simulated cluster has no {version} samples"])
        return Reading(**values)

    def emit_product_traffic(self, service, *, canary_tag: str, stable_tag: str, start, end) -> int:
        """Write the product events the users of both versions made in [start, end) to the
        analytics store (SIM_PRODUCT_TRAFFIC_SCALE minutes of traffic per real minute): the
        real world's apps send theirs through capture. Returns the events written."""
        share = self.cluster.canary_share(service)
        minutes = (end - start).total_seconds() / 60 * settings.SIM_PRODUCT_TRAFFIC_SCALE
        if minutes <= 0:
            return 0
        rows = product_events(
            service,
            canary_tag=canary_tag,
            stable_tag=stable_tag,
            canary_share=share,
            start=start,
            end=end,
            minutes=minutes,
        )
        return event_store.insert_events(rows) if rows else 0
