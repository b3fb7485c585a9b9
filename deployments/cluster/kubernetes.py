"""The Kubernetes backend: Deployments through apps/v1, traffic through an Istio VirtualService.

Writes are PATCH (merge patch) or create; never PUT. 409, 429 and 5xx answers and connection
errors are retried with exponential backoff, then raised as `ClusterUnavailable`; other refusals
raise `ClusterRefused` with the API's reason.
"""

import json
import logging
import time

from django.conf import settings
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from deployments.cluster import manifests
from deployments.cluster.base import (
    ClusterRefused,
    ClusterUnavailable,
    DeploymentState,
    canary_name,
    stable_name,
)

log = logging.getLogger(__name__)
MERGE = "application/merge-patch+json"
RETRIED_STATUSES = {409, 429, 500, 502, 503, 504}


def api_client_from_settings() -> client.ApiClient:
    if settings.KUBERNETES_API_URL:
        cfg = client.Configuration(host=settings.KUBERNETES_API_URL.rstrip("/"))
        return client.ApiClient(cfg)
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.ApiClient()


class KubernetesCluster:
    def __init__(self, api: client.ApiClient, *, retries: int, backoff: float, timeout: float):
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.retries, self.backoff, self.timeout = retries, backoff, timeout
        self.istio_version = settings.ISTIO_API_VERSION

    @classmethod
    def from_settings(cls) -> "KubernetesCluster":
        return cls(
            api_client_from_settings(),
            retries=settings.KUBERNETES_RETRIES,
            backoff=settings.KUBERNETES_RETRY_BACKOFF_SECONDS,
            timeout=settings.KUBERNETES_TIMEOUT_SECONDS,
        )

    def _call(self, what: str, fn, *args, missing_ok: bool = False, **kwargs):
        """Call the API with retries; returns parsed JSON (None for a 404 when `missing_ok`)."""
        kwargs.setdefault("_request_timeout", self.timeout)
        for attempt in range(self.retries + 1):
            try:
                response = fn(*args, _preload_content=False, **kwargs)
                body = response.data
                return json.loads(body) if body else {}
            except ApiException as exc:
                if exc.status == 404 and missing_ok:
                    return None
                if exc.status not in RETRIED_STATUSES:
                    raise ClusterRefused(f"kubernetes refused to {what}: {_reason(exc)}") from exc
                problem = f"{exc.status} {_reason(exc)}"
            except (HTTPError, OSError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if attempt < self.retries:
                delay = self.backoff * 2**attempt
                log.warning("kubernetes: %s failed (%s); retry in %.1fs", what, problem, delay)
                time.sleep(delay)
        raise ClusterUnavailable(
            f"kubernetes: could not {what} after {self.retries + 1} tries: {problem}"
        )

    # Deployments
    def _read_deployment(self, namespace: str, name: str) -> dict | None:
        return self._call(
            f"read Deployment {namespace}/{name}",
            self.apps.read_namespaced_deployment,
            name,
            namespace,
            missing_ok=True,
        )

    def deployment_state(self, namespace: str, name: str) -> DeploymentState | None:
        obj = self._read_deployment(namespace, name)
        if obj is None:
            return None
        spec, status = obj.get("spec", {}), obj.get("status") or {}
        containers = spec.get("template", {}).get("spec", {}).get("containers") or [{}]
        return DeploymentState(
            name=name,
            image=containers[0].get("image", ""),
            replicas=int(spec.get("replicas") or 0),
            ready_replicas=int(status.get("readyReplicas") or 0),
            updated_replicas=int(status.get("updatedReplicas") or 0),
        )

    def _create_or_patch(self, body: dict, patch: dict) -> None:
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        if self._read_deployment(namespace, name) is None:
            self._call(
                f"create Deployment {namespace}/{name}",
                self.apps.create_namespaced_deployment,
                namespace,
                body,
            )
        else:
            self._call(
                f"patch Deployment {namespace}/{name}",
                self.apps.patch_namespaced_deployment,
                name,
                namespace,
                patch,
                _content_type=MERGE,
            )

    def ensure_stable(self, service) -> DeploymentState:
        name = stable_name(service.name)
        state = self.deployment_state(service.namespace, name)
        if state is None:
            body = manifests.deployment(
                service,
                name=name,
                version="stable",
                image=service.stable_image,
                replicas=service.replicas,
                rollout_id=0,
                by="platform",
            )
            self._call(
                f"create Deployment {service.namespace}/{name}",
                self.apps.create_namespaced_deployment,
                service.namespace,
                body,
            )
            state = self.deployment_state(service.namespace, name)
        return state

    def apply_canary(self, service, *, image: str, replicas: int, rollout_id: int, by: str) -> None:
        body = manifests.deployment(
            service,
            name=canary_name(service.name),
            version="canary",
            image=image,
            replicas=replicas,
            rollout_id=rollout_id,
            by=by,
        )
        self._create_or_patch(body, _image_patch(body, replicas=replicas))

    def update_stable(self, service, *, image: str, rollout_id: int, by: str) -> None:
        body = manifests.deployment(
            service,
            name=stable_name(service.name),
            version="stable",
            image=image,
            replicas=service.replicas,
            rollout_id=rollout_id,
            by=by,
        )
        self._create_or_patch(body, _image_patch(body, replicas=service.replicas))

    def scale_deployment(self, namespace: str, name: str, replicas: int) -> None:
        self._call(
            f"scale Deployment {namespace}/{name} to {replicas}",
            self.apps.patch_namespaced_deployment_scale,
            name,
            namespace,
            {"spec": {"replicas": replicas}},
            _content_type=MERGE,
        )

    def get_deployment_replicas(self, namespace: str, name: str) -> int | None:
        state = self.deployment_state(namespace, name)
        return None if state is None else state.replicas

    def delete_deployment(self, namespace: str, name: str) -> None:
        self._call(
            f"delete Deployment {namespace}/{name}",
            self.apps.delete_namespaced_deployment,
            name,
            namespace,
            missing_ok=True,
        )

    # Traffic (Istio)
    def _custom(self, verb: str, plural: str, namespace: str, *args, **kwargs):
        fn = getattr(self.custom, f"{verb}_namespaced_custom_object")
        return self._call(
            f"{verb} {plural} in {namespace}",
            fn,
            manifests.ISTIO_GROUP,
            self.istio_version,
            namespace,
            plural,
            *args,
            **kwargs,
        )

    def ensure_routing(self, service) -> None:
        ns = service.namespace
        if (
            self._call(
                f"read Service {ns}/{service.name}",
                self.core.read_namespaced_service,
                service.name,
                ns,
                missing_ok=True,
            )
            is None
        ):
            self._call(
                f"create Service {ns}/{service.name}",
                self.core.create_namespaced_service,
                ns,
                manifests.k8s_service(service),
            )
        if self._custom("get", "destinationrules", ns, service.name, missing_ok=True) is None:
            body = manifests.destination_rule(service, api_version=self.istio_version)
            self._custom("create", "destinationrules", ns, body)
        if self._custom("get", "virtualservices", ns, service.name, missing_ok=True) is None:
            body = manifests.virtual_service(
                service, api_version=self.istio_version, canary_weight=0
            )
            self._custom("create", "virtualservices", ns, body)

    def set_canary_weight(self, service, weight: int, *, match: list[dict] | None = None) -> None:
        # A merge patch replaces the whole `http` list, so the match route comes and goes with it.
        patch = {"spec": {"http": manifests.http_routes(service, weight, match)}}
        self._custom(
            "patch", "virtualservices", service.namespace, service.name, patch, _content_type=MERGE
        )

    def _http_routes(self, service) -> list[dict]:
        vs = self._custom(
            "get", "virtualservices", service.namespace, service.name, missing_ok=True
        )
        return (vs or {}).get("spec", {}).get("http", [])

    def get_canary_weight(self, service) -> int:
        for http in self._http_routes(service):
            if http.get("match"):
                continue  # the match route sends 100% of matching requests, not the split
            for route in http.get("route", []):
                if route.get("destination", {}).get("subset") == "canary":
                    return int(route.get("weight") or 0)
        return 0

    def get_canary_match(self, service) -> list[dict]:
        for http in self._http_routes(service):
            if http.get("match"):
                return list(http["match"])
        return []


def _image_patch(body: dict, *, replicas: int) -> dict:
    """The part of a Deployment a rollout changes: labels, annotations, replicas, pod template."""
    return {
        "metadata": {
            "labels": body["metadata"]["labels"],
            "annotations": body["metadata"]["annotations"],
        },
        "spec": {"replicas": replicas, "template": body["spec"]["template"]},
    }


def _reason(exc: ApiException) -> str:
    try:
        status = json.loads(exc.body or "{}")
        return (
            f"{exc.status} {status.get('reason', exc.reason)}: {status.get('message', '')}".strip()
        )
    except (ValueError, AttributeError):
        return f"{exc.status} {exc.reason}"
