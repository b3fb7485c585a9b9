"""Kubernetes and Istio objects for a service's stable and canary versions.

Built with the practices of the original design: RollingUpdate 25%/25%, liveness `/health` and
readiness `/ready` probes, requests and limits, a non-root read-only container, secrets by
reference, labels `app`/`version`/`rollout-id`, annotations for who deployed and when.
"""

from datetime import UTC, datetime

from deployments.matching import istio_match

ISTIO_GROUP = "networking.istio.io"


def _secret_env(secret_env: dict) -> list[dict]:
    env = []
    for var, ref in sorted((secret_env or {}).items()):
        secret, _, key = str(ref).partition("/")
        env.append(
            {
                "name": var,
                "valueFrom": {"secretKeyRef": {"name": secret, "key": key or var.lower()}},
            }
        )
    return env


def deployment(
    service, *, name: str, version: str, image: str, replicas: int, rollout_id: int, by: str
) -> dict:
    labels = {"app": service.name, "version": version, "rollout-id": str(rollout_id)}
    probe = {"httpGet": {"port": service.port}, "periodSeconds": 10, "timeoutSeconds": 2}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": service.namespace,
            "labels": labels,
            "annotations": deployed_annotations(by=by, image=image),
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": service.name, "version": version}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                    "containers": [
                        {
                            "name": service.name,
                            "image": image,
                            "ports": [{"containerPort": service.port, "name": "http"}],
                            "env": _secret_env(service.secret_env),
                            "resources": {
                                "requests": {
                                    "cpu": service.cpu_request,
                                    "memory": service.memory_request,
                                },
                                "limits": {
                                    "cpu": service.cpu_limit,
                                    "memory": service.memory_limit,
                                },
                            },
                            "livenessProbe": {
                                **probe,
                                "httpGet": {"path": "/health", "port": service.port},
                                "initialDelaySeconds": 10,
                            },
                            "readinessProbe": {
                                **probe,
                                "httpGet": {"path": "/ready", "port": service.port},
                                "initialDelaySeconds": 3,
                            },
                            "securityContext": {
                                "runAsNonRoot": True,
                                "readOnlyRootFilesystem": True,
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                },
            },
        },
    }


def deployed_annotations(*, by: str, image: str) -> dict:
    return {
        "book2video.io/deployed-by": by,
        "book2video.io/deployed-at": datetime.now(UTC).isoformat(timespec="seconds"),
        "book2video.io/image": image,
    }


def host(service) -> str:
    return f"{service.name}.{service.namespace}.svc.cluster.local"


def http_routes(service, canary_weight: int, match: list[dict] | None = None) -> list[dict]:
    """Istio routes: requests matching a rule (deployments/matching.py) to canary, then the
    weighted split for everything else."""
    routes = []
    if match:
        routes.append(
            {
                "name": "canary-match",
                "match": istio_match(match),
                "route": [
                    {"destination": {"host": host(service), "subset": "canary"}, "weight": 100}
                ],
            }
        )
    return [
        *routes,
        {
            "name": "primary",
            "route": [
                {
                    "destination": {"host": host(service), "subset": "stable"},
                    "weight": 100 - canary_weight,
                },
                {
                    "destination": {"host": host(service), "subset": "canary"},
                    "weight": canary_weight,
                },
            ],
        },
    ]


def virtual_service(service, *, api_version: str, canary_weight: int) -> dict:
    return {
        "apiVersion": f"{ISTIO_GROUP}/{api_version}",
        "kind": "VirtualService",
        "metadata": {
            "name": service.name,
            "namespace": service.namespace,
            "labels": {"app": service.name},
        },
        "spec": {"hosts": [service.name], "http": http_routes(service, canary_weight)},
    }


def destination_rule(service, *, api_version: str) -> dict:
    return {
        "apiVersion": f"{ISTIO_GROUP}/{api_version}",
        "kind": "DestinationRule",
        "metadata": {
            "name": service.name,
            "namespace": service.namespace,
            "labels": {"app": service.name},
        },
        "spec": {
            "host": host(service),
            "subsets": [
                {"name": "stable", "labels": {"version": "stable"}},
                {"name": "canary", "labels": {"version": "canary"}},
            ],
        },
    }


def k8s_service(service) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": service.name,
            "namespace": service.namespace,
            "labels": {"app": service.name},
        },
        "spec": {
            "selector": {"app": service.name},
            "ports": [{"name": "http", "port": service.port, "targetPort": service.port}],
        },
    }
