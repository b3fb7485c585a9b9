"""Metrics read from the simulated cluster's per-version model (see cluster/simulated.py)."""

from deployments.cluster.simulated import SimulatedCluster
from deployments.metrics.base import Reading


class SimulatedMetrics:
    def __init__(self, cluster: SimulatedCluster | None = None):
        self.cluster = cluster or SimulatedCluster()

    def read(self, service, version: str) -> Reading:
        values = self.cluster.sample(service, version)
        if values is None:
            return Reading(problems=[f"the simulated cluster has no {version} samples"])
        return Reading(**values)
