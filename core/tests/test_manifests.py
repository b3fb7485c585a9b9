"""The platform's own deployment files: Kubernetes manifests (kubernetes client models, Istio
shapes, kustomize build), Prometheus rules and Alertmanager config (promtool/amtool when
installed), and the Dockerfile and compose commands against core/processes.py."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from kubernetes import client

from core.processes import process_commands
from operations.models import AlertRule

ROOT = settings.BASE_DIR
K8S = ROOT / "k8s"
NAMESPACE = "book2video-production"

MODELS = {
    ("v1", "Namespace"): "V1Namespace",
    ("v1", "ServiceAccount"): "V1ServiceAccount",
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "Service"): "V1Service",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "V2HorizontalPodAutoscaler",
    ("policy/v1", "PodDisruptionBudget"): "V1PodDisruptionBudget",
}
ISTIO = {"VirtualService", "DestinationRule"}


def manifest_files() -> list[Path]:
    return sorted(
        p
        for p in K8S.rglob("*.yaml")
        if p.name != "kustomization.yaml" and "monitoring" not in p.parts
    )


def documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _strip_empty(value):
    if isinstance(value, dict):
        return {k: _strip_empty(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_empty(v) for v in value]
    return value


def to_model(obj: dict):
    """Deserialize into the official client model; a misspelled field does not survive the trip."""
    api = client.ApiClient()
    model = api.deserialize(
        json.dumps(obj), MODELS[(obj["apiVersion"], obj["kind"])], "application/json"
    )
    back = api.sanitize_for_serialization(model)
    assert _strip_empty(back) == _strip_empty(obj), f"{obj['kind']} {obj['metadata']['name']}"
    return model


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_every_manifest_deserializes_into_kubernetes_models(path):
    for obj in documents(path):
        if obj["kind"] in ISTIO:
            assert obj["apiVersion"] == "networking.istio.io/v1beta1"
            continue
        if path.parent.name == "production" and obj["kind"] != "Namespace":
            continue  # strategic-merge patches: partial objects, checked after the build below
        assert to_model(obj).metadata.name


def test_every_file_is_in_its_kustomization():
    for folder in (K8S / "base", K8S / "overlays" / "production"):
        kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
        listed = set(kustomization.get("resources", [])) | {
            p["path"] for p in kustomization.get("patches", [])
        }
        on_disk = {p.name for p in folder.glob("*.yaml") if p.name != "kustomization.yaml"}
        assert on_disk <= listed, on_disk - listed
        for entry in listed:
            assert (folder / entry).exists(), entry


def built_production() -> list[dict]:
    """`kubectl kustomize` of the production overlay when kubectl is here; else base + overlay
    merged by hand (namespace, the namespace object, the web replicas patch)."""
    kubectl = shutil.which("kubectl")
    if kubectl:
        out = subprocess.run(
            [kubectl, "kustomize", str(K8S / "overlays" / "production")],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        return [d for d in yaml.safe_load_all(out) if d]
    objs = documents(K8S / "overlays" / "production" / "namespace.yaml")
    for path in sorted((K8S / "base").glob("*.yaml")):
        if path.name != "kustomization.yaml":
            for obj in documents(path):
                obj["metadata"]["namespace"] = NAMESPACE
                objs.append(obj)
    return objs


@pytest.fixture(scope="module")
def production():
    objs = built_production()
    return {(o["kind"], o["metadata"]["name"]): o for o in objs}


def test_production_build_is_valid_and_in_its_namespace(production):
    for (kind, name), obj in production.items():
        if kind in ISTIO:
            continue
        to_model(obj)
        if kind != "Namespace":
            assert obj["metadata"]["namespace"] == NAMESPACE, (kind, name)
    labels = production[("Namespace", NAMESPACE)]["metadata"]["labels"]
    assert labels["environment"] == "production" and labels["cost-center"] == "engineering"
    assert labels["istio-injection"] == "enabled"


def _container(production, name: str) -> client.V1Container:
    deployment = to_model(production[("Deployment", f"book2video-{name}")])
    return deployment, deployment.spec.template.spec.containers[0]


def test_deployments_run_the_processes_of_processes_py(production):
    expected = process_commands(host="0.0.0.0", port=8000, python="python")
    for name in ("web", "worker", "beat"):
        _, container = _container(production, name)
        assert container.command == expected[name], name
        if shutil.which("kubectl"):
            assert container.image.startswith("registry.book2video.internal/book2video/console:")


def test_deployments_are_hardened_and_take_secrets_from_secret_refs(production):
    for name in ("web", "worker", "beat"):
        deployment, container = _container(production, name)
        pod = deployment.spec.template.spec
        assert pod.security_context.run_as_non_root and pod.security_context.run_as_user == 1000
        for c in [container, *(pod.init_containers or [])]:
            sc = c.security_context
            assert sc.read_only_root_filesystem and sc.run_as_non_root
            assert sc.allow_privilege_escalation is False and sc.capabilities.drop == ["ALL"]
            assert c.resources.requests and c.resources.limits
            assert {m.mount_path for m in c.volume_mounts} == {"/app/var", "/tmp"}
            secret_refs = {
                e.name: e.value_from.secret_key_ref
                for e in c.env
                if e.value_from and e.value_from.secret_key_ref
            }
            assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL"} <= set(secret_refs)
            assert {r.name for r in secret_refs.values()} == {"book2video-secrets"}
            assert not any(e.value for e in c.env if e.name in secret_refs)
        assert {v.name for v in pod.volumes if v.empty_dir is not None} == {"var", "tmp"}


def test_web_probes_and_beat_is_single(production):
    deployment, web = _container(production, "web")
    assert web.liveness_probe.http_get.path == "/health"
    assert web.readiness_probe.http_get.path == "/ready"
    assert web.liveness_probe.http_get.http_headers[0].value in (
        production[("ConfigMap", "book2video-config")]["data"]["ALLOWED_HOSTS"].split(",")
    )
    assert deployment.spec.replicas == 3  # the production patch
    assert deployment.spec.template.spec.init_containers[0].command[-1].endswith("migrate_store")
    beat, _ = _container(production, "beat")
    assert beat.spec.replicas == 1 and beat.spec.strategy.type == "Recreate"
    _, container = _container(production, "worker")
    assert container.liveness_probe._exec.command[-1].startswith("celery -A config inspect")
    assert {"name": "WORKER_METRICS_PORT", "value": "9808"} in [
        {"name": e.name, "value": e.value} for e in container.env
    ]


def test_worker_hpa_follows_the_original_design(production):
    hpa = to_model(production[("HorizontalPodAutoscaler", "book2video-worker")])
    assert hpa.spec.scale_target_ref.name == "book2video-worker"
    assert (hpa.spec.min_replicas, hpa.spec.max_replicas) == (3, 50)
    resources = {m.resource.name: m.resource.target for m in hpa.spec.metrics if m.resource}
    assert resources["cpu"].average_utilization == 70
    assert resources["memory"].average_utilization == 80
    (queue,) = [m for m in hpa.spec.metrics if m.type in ("External", "Pods")]
    metric = queue.external or queue.pods
    assert metric.metric.name == "book2video_queue_length"
    assert metric.target.type == "AverageValue" and metric.target.average_value == "5"
    up, down = hpa.spec.behavior.scale_up, hpa.spec.behavior.scale_down
    assert up.stabilization_window_seconds == 60
    assert [(p.type, p.value, p.period_seconds) for p in up.policies] == [("Percent", 100, 15)]
    assert down.stabilization_window_seconds == 300
    assert [(p.type, p.value, p.period_seconds) for p in down.policies] == [("Percent", 10, 60)]
    pdbs = [o for (kind, _), o in production.items() if kind == "PodDisruptionBudget"]
    assert {p["spec"]["selector"]["matchLabels"]["app"] for p in pdbs} == {
        "book2video-web",
        "book2video-worker",
    }


DURATION = re.compile(r"^\d+(\.\d+)?(ms|s|m|h)$")


def test_istio_virtual_service_shape(production):
    vs = production[("VirtualService", "book2video-api")]
    dr = production[("DestinationRule", "book2video-web")]
    subsets = {s["name"] for s in dr["spec"]["subsets"]}
    assert subsets == {"stable", "canary"}
    assert dr["spec"]["host"] == "book2video-web"
    service = production[("Service", "book2video-web")]
    for route in vs["spec"]["http"]:
        assert set(route) <= {"name", "match", "route", "timeout", "retries", "fault"}
        destinations = route["route"]
        weights = [d.get("weight", 100) for d in destinations]
        assert sum(weights) == 100 or len(destinations) == 1
        for d in destinations:
            assert d["destination"]["host"] == service["metadata"]["name"]
            assert d["destination"].get("subset", "stable") in subsets
    by_name = {r["name"]: r for r in vs["spec"]["http"]}
    api = by_name["api-v2"]
    assert api["match"] == [{"uri": {"prefix": "/api/v2/"}}]
    assert [(d["destination"]["subset"], d["weight"]) for d in api["route"]] == [
        ("stable", 90),
        ("canary", 10),
    ]
    health = by_name["health"]
    assert health["match"] == [{"uri": {"prefix": "/health"}}]
    assert health["timeout"] == "1s"
    assert health["retries"]["attempts"] == 3 and health["retries"]["perTryTimeout"] == "500ms"
    assert all(DURATION.match(v) for v in (health["timeout"], health["retries"]["perTryTimeout"]))
    labels = production[("Deployment", "book2video-web")]["spec"]["template"]["metadata"]["labels"]
    assert labels["version"] == "stable"  # the stable subset selects the web pods


# --- monitoring --------------------------------------------------------------------------------

RULES = K8S / "monitoring" / "prometheus-rules.yml"
ALERTMANAGER = K8S / "monitoring" / "alertmanager.yml"


@pytest.mark.django_db
def test_prometheus_rules_structure_and_default_actions():
    groups = yaml.safe_load(RULES.read_text())["groups"]
    rules = {r["alert"]: r for g in groups for r in g["rules"]}
    for rule in rules.values():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}
        assert rule["expr"].strip() and DURATION.match(rule.get("for", "0m"))
    actions = {r.alertname: r.action for r in AlertRule.objects.all()}
    for name, action in actions.items():
        assert rules[name]["labels"]["action"] == action
    assert rules["HighErrorRate"]["for"] == "2m"
    assert rules["HighErrorRate"]["labels"]["severity"] == "critical"
    assert (
        "> 0.05" in rules["HighErrorRate"]["expr"] and "service" in rules["HighErrorRate"]["expr"]
    )
    assert (
        rules["HighProcessingTime"]["for"] == "5m"
        and "> 600" in rules["HighProcessingTime"]["expr"]
    )
    assert "book2video_processing_duration_seconds_bucket" in rules["HighProcessingTime"]["expr"]
    assert "increase(book2video_ai_cost_dollars[1h])" in rules["HighAICost"]["expr"]
    assert "> 500" in rules["HighAICost"]["expr"]


@pytest.mark.skipif(not shutil.which("promtool"), reason="promtool not installed (apt: prometheus)")
def test_promtool_checks_and_unit_tests_the_rules():
    subprocess.run(["promtool", "check", "rules", str(RULES)], check=True, timeout=60)
    subprocess.run(
        ["promtool", "test", "rules", "tests/rules_test.yml"],
        check=True,
        timeout=60,
        cwd=RULES.parent,
    )


def test_alertmanager_example_posts_to_the_webhook():
    config = yaml.safe_load(ALERTMANAGER.read_text())
    (receiver,) = [r for r in config["receivers"] if r.get("webhook_configs")]
    (hook,) = receiver["webhook_configs"]
    assert hook["url"].endswith("/api/alerts/") and hook["send_resolved"] is True
    assert hook["http_config"]["authorization"]["type"] == "Bearer"
    assert any(r["receiver"] == receiver["name"] for r in config["route"]["routes"])
    if shutil.which("amtool"):
        subprocess.run(["amtool", "check-config", str(ALERTMANAGER)], check=True, timeout=60)


# --- Dockerfile and compose -----------------------------------------------------------------


def _dockerfile() -> dict[str, list[str]]:
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    instructions: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            instructions.setdefault(word.upper(), []).append(rest.strip())
    return instructions


def test_dockerfile_runs_the_web_process_as_non_root_with_var_on_a_volume():
    docker = _dockerfile()
    assert re.match(r"python:3\.11-slim", docker["FROM"][0])
    assert docker["USER"][-1].split(":")[0] not in ("root", "0")
    assert json.loads(docker["VOLUME"][0]) == ["/app/var"]
    env = " ".join(docker["ENV"])
    assert "VAR_DIR=/app/var" in env and "STATIC_ROOT=/app/staticfiles" in env
    web = process_commands(host="0.0.0.0", port=8000, python="python")["web"]
    assert json.loads(docker["CMD"][-1]) == web
    assert any("collectstatic" in run for run in docker["RUN"])


def test_compose_runs_the_processes_of_processes_py():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "clickhouse", "web", "worker", "beat"} <= set(services)
    expected = process_commands(host="0.0.0.0", port=8000, python="python")
    for name in ("web", "worker", "beat"):
        assert services[name]["command"] == expected[name], name
        assert services[name]["read_only"] is True
        assert services[name]["environment"]["DATABASE_URL"].startswith("postgres://")
        assert services[name]["environment"]["CLICKHOUSE_URL"].startswith("http://")
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )


def test_compose_ships_no_fixed_secret():
    import re

    text = (ROOT / "docker-compose.yml").read_text()
    compose = yaml.safe_load(text)
    env = compose["x-console"]["environment"]
    for name in ("SECRET_KEY", "METRICS_TOKEN", "ALERT_WEBHOOK_TOKEN"):
        assert re.fullmatch(rf"\$\{{{name}:\?[^}}]+\}}", env[name]), (name, env[name])
    assert "${POSTGRES_PASSWORD:?" in env["DATABASE_URL"]
    assert "${CLICKHOUSE_PASSWORD:?" in env["CLICKHOUSE_URL"]
    assert "change-me" not in text and ":book2video@" not in text
