"""Cluster backends: where rollouts act (`CLUSTER_BACKEND`: simulated or kubernetes)."""

from deployments.cluster.base import (
    ClusterBackend,
    ClusterError,
    ClusterRefused,
    ClusterUnavailable,
    DeploymentState,
    canary_name,
    stable_name,
)


def cluster_backend(name: str | None = None) -> ClusterBackend:
    """The backend named by `CLUSTER_BACKEND` (or `name`)."""
    from django.conf import settings

    name = name or settings.CLUSTER_BACKEND
    if name == "kubernetes":
        from deployments.cluster.kubernetes import KubernetesCluster

        return KubernetesCluster.from_settings()
    from deployments.cluster.simulated import SimulatedCluster

    return SimulatedCluster()


__all__ = [
    "ClusterBackend",
    "ClusterError",
    "ClusterRefused",
    "ClusterUnavailable",
    "DeploymentState",
    "canary_name",
    "cluster_backend",
    "stable_name",
]
