"""What the rollout engine asks of a cluster, whichever backend answers."""

from dataclasses import dataclass
from typing import Protocol


class ClusterError(Exception):
    """The cluster refused or failed an operation."""


class ClusterUnavailable(ClusterError):
    """A failure that may pass (connection refused, 409/429/5xx after retries): retry later."""


class ClusterRefused(ClusterError):
    """The API refused the request for good (400, 403, 404, 422): the reason says why."""


@dataclass(frozen=True)
class DeploymentState:
    name: str
    image: str
    replicas: int
    ready_replicas: int
    updated_replicas: int

    def is_ready(self, *, image: str, replicas: int) -> bool:
        """The Deployment runs `image` with at least `replicas` ready, updated pods."""
        return (
            self.image == image
            and self.replicas == replicas
            and self.ready_replicas >= replicas
            and self.updated_replicas >= replicas
        )


def stable_name(service_name: str) -> str:
    return f"{service_name}-stable"


def canary_name(service_name: str) -> str:
    return f"{service_name}-canary"


class ClusterBackend(Protocol):
    """Operations on Deployments and on the traffic split of one service."""

    def ensure_routing(self, service) -> None:
        """The traffic split (VirtualService, DestinationRule) exists; a new one sends 0% to canary."""

    def ensure_stable(self, service) -> DeploymentState:
        """The stable Deployment exists (created on the service's stable tag when missing)."""

    def apply_canary(self, service, *, image: str, replicas: int, rollout_id: int, by: str) -> None:
        """Create or patch the canary Deployment to run `image` with `replicas` pods."""

    def update_stable(self, service, *, image: str, rollout_id: int, by: str) -> None:
        """Patch the stable Deployment to run `image` (its own rolling update follows)."""

    def deployment_state(self, namespace: str, name: str) -> DeploymentState | None: ...

    def set_canary_weight(self, service, weight: int, *, match: list[dict] | None = None) -> None:
        """Route `weight`% of the service's traffic to canary, the rest to stable.

        Requests matching any `match` rule (deployments/matching.py) go to canary whatever the
        weight; without rules (the default, and at promotion or rollback) none are special.
        """

    def get_canary_weight(self, service) -> int:
        """The weight of the weighted route (requests outside any match rule)."""

    def get_canary_match(self, service) -> list[dict]:
        """The Istio HTTPMatchRequests routing to canary now ([] when none)."""

    def scale_deployment(self, namespace: str, name: str, replicas: int) -> None: ...

    def get_deployment_replicas(self, namespace: str, name: str) -> int | None: ...

    def delete_deployment(self, namespace: str, name: str) -> None:
        """Remove a Deployment; removing one that does not exist is not an error."""
