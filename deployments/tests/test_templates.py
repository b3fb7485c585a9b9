"""Metric templates: validation, PromQL rendering (evaluated by Prometheus' own engine through
promtool), the engine's per-template decisions, overrides per rollout, API and admin."""

import re
import shutil
import subprocess

import pytest
from django.core.exceptions import ValidationError

from deployments.metrics import templates
from deployments.metrics.prometheus import PrometheusKind, PrometheusMetrics, query_values
from deployments.models import MetricTemplate, Rollout, RolloutStatus
from deployments.services import metric_templates_ensure_defaults, rollout_resume, rollout_start

pytestmark = pytest.mark.django_db

QUICK = {"interval_seconds": 0.2, "samples_per_step": 1}
STEPS = [50, 100]


class FakePrometheus:
    """A metrics backend answering each template by name (and version): what the Prometheus
    backend returns after rendering and querying. None: no data."""

    def __init__(self, values: dict):
        self.values = values
        self.calls = []

    def query_templates(self, service, version, templates_, *, image_tag=""):
        out = {}
        for t in templates_:
            self.calls.append((t["name"], version, image_tag))
            value = self.values.get((t["name"], version), self.values.get(t["name"]))
            out[t["name"]] = (value, "" if value is not None else "no data")
        return out


HEALTHY = {"request_rate": 50.0, "error_rate": 0.5, "p99_ms": 150.0, "cpu_percent": 30.0}
HEALTHY["memory_percent"] = 40.0


def queue_template(service, **fields):
    base = {
        "name": "queue_depth",
        "query": 'max(render_queue_depth{namespace="{{ namespace }}",version="{{ version }}"})',
        "max_value": 10.0,
    }
    return MetricTemplate.objects.create(service=service, **{**base, **fields})


def start(service, engineer, **kwargs):
    return rollout_start(
        service=service, image_tag="v2", by=engineer, steps=STEPS, analysis=QUICK, **kwargs
    )


# Validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields,field,message",
    [
        ({"query": "up{job='{{ job }}'}"}, "query", "unknown placeholder {{ job }}"),
        ({"query": "up{{ namespace }"}, "query", "not closed"),
        ({"query": "sum(rate(x[{{ interval }}])"}, "query", "unbalanced"),
        ({"query": ""}, "query", "needs a PromQL query"),
        ({"min_value": 5, "max_value": 1}, "max_value", "below min_value"),
        ({"interval": "1 minute"}, "interval", "Prometheus duration"),
        ({"failure_limit": 0}, "failure_limit", "from 1 to 100"),
        ({"effect_size_tolerance": 0.5}, "effect_size_tolerance", "ratio"),
        ({"name": "Queue Depth"}, "name", "lowercase"),
    ],
)
def test_model_validation_names_the_field(service, fields, field, message):
    template = MetricTemplate(
        service=service, **{"name": "q", "query": "up{namespace='{{ namespace }}'}", **fields}
    )
    with pytest.raises(ValidationError) as caught:
        template.full_clean()
    assert field in caught.value.message_dict
    assert any(message in m for m in caught.value.message_dict[field])


def test_every_placeholder_renders_and_defaults_are_valid(service):
    for template in templates.default_templates():
        assert templates.validate(template) == {}, template["name"]
        assert not re.search(r"\{\{|\}\}", _rendered(template, service, "canary"))
    values = query_values(service, "canary", {"interval": "30s"}, image_tag="v2")
    assert values == {
        "namespace": service.namespace,
        "service": "api-gateway",
        "target": "api-gateway-canary",
        "version": "canary",
        "image_tag": "v2",
        "interval": "30s",
    }
    assert templates.render("{{namespace}}/{{ target }}", **values) == (
        f"{service.namespace}/api-gateway-canary"
    )


def _rendered(template, service, version):
    return templates.render(template["query"], **query_values(service, version, template))


def test_register_kind_is_the_extension_point(service):
    class Fixed:
        label = "fixed"

        def validate(self, template):
            return {} if "value" in template["params"] else {"params": "needs value"}

        def measure(self, templates_, context):
            return {t["name"]: templates.Measurement(t["params"]["value"], 1.0) for t in templates_}

    previous = templates._loaded.get("store", "unset")
    templates.register_kind("store", Fixed())
    try:
        bad = templates.complete({"name": "renders", "kind": "store"})
        assert templates.validate(bad) == {"params": "needs value"}
        good = templates.complete({"name": "renders", "kind": "store", "params": {"value": 2}})
        assert templates.validate(good) == {}
    finally:
        if previous == "unset":
            templates._loaded.pop("store", None)
        else:
            templates._loaded["store"] = previous


# PromQL on Prometheus' own engine -----------------------------------------------------------

PROMTOOL = shutil.which("promtool")


def _promtool_eval(tmp_path, series: list[tuple[str, str]], expr: str) -> float:
    """Evaluate `expr` at 5m over `series` (15 s steps) with promtool's rule unit tests; the
    deliberately wrong expectation makes promtool print what it got."""
    lines = [
        "rule_files: []",
        "evaluation_interval: 1m",
        "tests:",
        "  - interval: 15s",
        "    input_series:",
    ]
    for name, values in series:
        lines += [f"      - series: '{name}'", f"        values: '{values}'"]
    lines += [
        "    promql_expr_test:",
        f"      - expr: '{expr}'",
        "        eval_time: 5m",
        "        exp_samples:",
        "          - labels: '{}'",
        "            value: -12345",
    ]
    path = tmp_path / "t.yml"
    path.write_text("\n".join(lines) + "\n")
    run = subprocess.run([PROMTOOL, "test", "rules", str(path)], capture_output=True, text=True)
    got = re.search(r"got: \{\} (\S+)", run.stdout + run.stderr)
    assert got, run.stdout + run.stderr
    return float(got.group(1))


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed")
def test_default_templates_render_to_promql_prometheus_evaluates(tmp_path, service):
    ns = service.namespace
    sel = f'namespace="{ns}",app="api-gateway",version="canary"'
    series = [
        # per 15 s: 90 answered 200 and 10 answered 503 -> 10 % errors
        (f'http_requests_total{{{sel},status="200"}}', "0+90x40"),
        (f'http_requests_total{{{sel},status="503"}}', "0+10x40"),
        (
            f'http_requests_total{{namespace="{ns}",app="api-gateway",version="stable",status="503"}}',
            "0+50x40",
        ),
    ]
    by_name = {t["name"]: t for t in templates.default_templates()}
    error_rate = _rendered(by_name["error_rate"], service, "canary")
    assert _promtool_eval(tmp_path, series, error_rate) == pytest.approx(10.0)
    request_rate = _rendered(by_name["request_rate"], service, "canary")
    assert _promtool_eval(tmp_path, series, request_rate) == pytest.approx(100 / 15)
    pod = f'namespace="{ns}",pod="api-gateway-canary-7d9f-x2",container="app"'
    cpu = [
        (f"container_cpu_usage_seconds_total{{{pod}}}", "0+3x40"),  # 0.2 cores
        (f'kube_pod_container_resource_limits{{{pod},resource="cpu"}}', "0.5x40"),
    ]
    cpu_query = _rendered(by_name["cpu_percent"], service, "canary")
    assert _promtool_eval(tmp_path, cpu, cpu_query) == pytest.approx(40.0)


def test_prometheus_backend_renders_each_template_per_version(service):
    from deployments.tests.test_prometheus import FakePrometheus as Loopback
    from deployments.tests.test_prometheus import vector

    prom = Loopback()
    try:
        prom.rules = [('v="canary"', 200, vector(12)), ('v="stable"', 200, vector(3))]
        backend = PrometheusMetrics(prom.url, timeout=2)
        template = templates.complete(
            {
                "name": "queue_depth",
                "query": 'max_over_time(q{ns="{{ namespace }}",v="{{ version }}",t="{{ image_tag }}"}'
                "[{{ interval }}])",
                "interval": "5m",
            }
        )
        rollout = Rollout(service=service, image_tag="v2", from_tag="v1")
        context = templates.MeasureContext(rollout, service, backend, None, True)
        measured = PrometheusKind().measure([template], context)["queue_depth"]
        assert (measured.canary, measured.stable) == (12.0, 3.0)
        assert sorted(prom.queries) == [
            f'max_over_time(q{{ns="{service.namespace}",v="canary",t="v2"}}[5m])',
            f'max_over_time(q{{ns="{service.namespace}",v="stable",t="v1"}}[5m])',
        ]
    finally:
        prom.close()


# Engine decisions ---------------------------------------------------------------------------


def test_failure_limit_counts_consecutive_failures_then_rolls_back(service, engineer, drive):
    metric_templates_ensure_defaults(service=service)
    queue_template(service, failure_limit=3)
    backend = FakePrometheus({**HEALTHY, ("queue_depth", "canary"): 50.0, "queue_depth": 2.0})
    rollout = drive(start(service, engineer), metrics=backend)
    assert rollout.status == RolloutStatus.ROLLED_BACK
    assert rollout.reason.startswith("canary failed analysis (queue_depth)")
    assert "canary queue_depth 50 > limit 10" in rollout.reason
    failed = list(rollout.events.filter(kind="sample_failed").values_list("message", flat=True))
    assert len(failed) == 2
    assert "queue_depth fail (1/3)" in failed[0] and "queue_depth fail (2/3)" in failed[1]
    rollback = rollout.events.get(kind="rollback")
    assert rollback.data["templates"] == ["queue_depth"]
    assert rollout.metric_state["queue_depth"]["failures"] == 3
    assert rollout.samples.filter(version="canary").count() == 3
    assert rollout.samples.filter(version="canary").last().values["queue_depth"] == 50.0


def test_a_pass_resets_the_failure_count(service, engineer, drive):
    queue_template(service, failure_limit=2)
    answers = iter([50.0, 2.0, 50.0, 2.0, 2.0, 2.0, 2.0])

    class Alternating(FakePrometheus):
        def query_templates(self, service_, version, templates_, *, image_tag=""):
            value = next(answers) if version == "canary" else 1.0
            return {t["name"]: (value, "") for t in templates_}

    rollout = drive(start(service, engineer), metrics=Alternating({}))
    assert rollout.status == RolloutStatus.PROMOTED
    assert rollout.events.filter(kind="sample_failed").count() == 2


def test_inconclusive_limit_pauses_and_resume_starts_counting_again(service, engineer, drive):
    queue_template(service, inconclusive_limit=2)
    backend = FakePrometheus({("queue_depth", "stable"): 1.0})  # canary: no data
    rollout = drive(start(service, engineer), metrics=backend)
    assert rollout.status == RolloutStatus.PAUSED and rollout.next_tick_at is None
    assert rollout.reason.startswith("inconclusive (queue_depth): no queue_depth data for canary")
    kinds = list(rollout.events.values_list("kind", flat=True))
    assert kinds.count("sample_inconclusive") == 1 and kinds[-1] == "inconclusive"
    assert rollout.events.get(kind="inconclusive").data["templates"] == ["queue_depth"]
    rollout = rollout_resume(rollout=rollout, by=engineer)
    assert rollout.metric_state["queue_depth"]["inconclusive"] == 0
    backend.values[("queue_depth", "canary")] = 3.0
    assert drive(rollout, metrics=backend).status == RolloutStatus.PROMOTED


def test_dry_run_is_measured_and_shown_but_never_decides(service, engineer, drive):
    queue_template(service, dry_run=True, failure_limit=1)
    MetricTemplate.objects.create(
        service=service, name="no_answer", query="absent_metric", dry_run=True
    )
    backend = FakePrometheus({"queue_depth": 99.0})
    rollout = drive(start(service, engineer), metrics=backend)
    assert rollout.status == RolloutStatus.PROMOTED
    assert not rollout.events.filter(kind__in=["sample_failed", "sample_inconclusive"]).exists()
    checks = {c["metric"]: c for c in rollout.last_judgement["checks"]}
    assert checks["queue_depth"]["verdict"] == "fail" and checks["queue_depth"]["dry_run"]
    assert checks["no_answer"]["verdict"] == "inconclusive"
    assert rollout.last_judgement["verdict"] == "pass"


def test_a_rollout_overrides_and_adds_templates(service, engineer, drive):
    queue_template(service)
    backend = FakePrometheus({"queue_depth": 50.0, "saturation": 0.2})
    rollout = start(
        service,
        engineer,
        metrics=[
            {"name": "queue_depth", "max_value": 100.0},
            {"name": "saturation", "query": "x{ns='{{ namespace }}'}", "max_value": 0.9},
        ],
    )
    assert [t["name"] for t in rollout.metrics] == ["queue_depth", "saturation"]
    assert rollout.metrics[0]["max_value"] == 100.0 and rollout.metrics[0]["query"].startswith(
        "max(render_queue_depth"
    )
    assert rollout.metrics[1]["failure_limit"] == 2  # defaults fill what was not given
    MetricTemplate.objects.filter(name="queue_depth").update(max_value=1.0)  # not in flight
    assert drive(rollout, metrics=backend).status == RolloutStatus.PROMOTED


def test_a_service_without_templates_is_judged_by_the_builtins(service, engineer, drive):
    assert not service.metric_templates.exists()
    rollout = rollout_start(service=service, image_tag="v2-fault", by=engineer, analysis=QUICK)
    assert [t["name"] for t in rollout.metrics] == list(templates.BUILTIN)
    rollout = drive(rollout)
    assert rollout.status == RolloutStatus.ROLLED_BACK
    assert "(error_rate)" in rollout.reason


def test_custom_promql_on_the_simulated_backend_is_inconclusive_and_says_why(
    service, engineer, drive
):
    queue_template(service)
    rollout = drive(start(service, engineer))
    assert rollout.status == RolloutStatus.PAUSED
    assert "serves only the built-in metrics" in rollout.reason


# API and admin ------------------------------------------------------------------------------


@pytest.fixture
def eng(engineer, api_client_for):
    return api_client_for(engineer)


@pytest.mark.parametrize(
    "metrics,path",
    [
        ([{"name": "q", "query": "up{a='{{ nope }}'}"}], ["metrics", "0", "query"]),
        ([{"name": "error_rate", "min_value": 3, "max_value": 1}], ["metrics", "0", "max_value"]),
        ([{"name": "error_rate", "bogus": 1}], ["metrics", "0", "bogus"]),
        ([{"name": "Bad Name"}], ["metrics", "0", "name"]),
        ([{"name": "error_rate", "interval": "5 min"}], ["metrics", "0", "interval"]),
        ([{"name": "error_rate"}, {"name": "error_rate"}], ["metrics"]),
        ([{"name": "new_metric"}], ["metrics"]),  # no query: refused after merging
        ([{"name": "error_rate", "min_value": 9}], ["metrics"]),  # above the service's max 5
    ],
)
def test_rollout_api_refuses_bad_templates_naming_the_field(eng, service, metrics, path):
    metric_templates_ensure_defaults(service=service)
    r = eng.post(
        "/api/rollouts/",
        {"service": service.name, "image_tag": "v2", "metrics": metrics},
        format="json",
    )
    # min above max, a name given twice, the query's grammar, a template that is incomplete or
    # out of range once merged with the service's: rules the schema cannot state (422)
    between = (
        ("min_value" in metrics[0] and "max_value" in metrics[0])
        or len(metrics) > 1
        or "query" in metrics[0]
        or path == ["metrics"]
    )
    assert r.status_code == (422 if between else 400), r.json()
    detail = r.json()["detail"]
    for key in path:
        detail = detail[key]
    assert detail
    assert not Rollout.objects.exists()


def test_rollout_api_describes_each_templates_result(eng, service, engineer, drive):
    metric_templates_ensure_defaults(service=service)
    r = eng.post(
        "/api/rollouts/",
        {
            "service": service.name,
            "image_tag": "v2",
            "steps": STEPS,
            "analysis": QUICK,
            "metrics": [{"name": "p99_ms", "max_value": 120, "failure_limit": 1}],
        },
        format="json",
    )
    assert r.status_code == 201, r.json()
    drive(Rollout.objects.get(pk=r.json()["id"]), metrics=FakePrometheus(HEALTHY))
    data = eng.get(f"/api/rollouts/{r.json()['id']}/").json()
    assert data["status"] == "rolled_back"
    results = {m["name"]: m for m in data["metric_results"]}
    assert results["p99_ms"]["verdict"] == "fail" and results["p99_ms"]["value"] == 150.0
    assert results["p99_ms"]["max_value"] == 120 and results["p99_ms"]["failures"] == 1
    assert results["error_rate"]["verdict"] == "pass"
    assert results["request_rate"]["dry_run"] is True
    assert "p99_ms" in data["reason"]


def test_schema_describes_templates_and_results(eng):
    schema = eng.get("/api/schema/?format=json").json()["components"]["schemas"]
    result = schema["MetricResultOutput"]["properties"]
    assert result["verdict"]["nullable"] is True
    assert set(schema["MetricTemplateInputRequest"]["properties"]) >= {
        "name",
        "kind",
        "query",
        "min_value",
        "max_value",
        "direction",
        "interval",
        "failure_limit",
        "inconclusive_limit",
        "dry_run",
    }
    rollout = schema["RolloutOutput"]["properties"]
    assert rollout["metric_results"]["items"]["$ref"].endswith("MetricResultOutput")
    assert rollout["metrics"]["items"]["$ref"].endswith("MetricTemplateOutput")


def test_service_api_gives_a_new_service_the_builtins(eng):
    r = eng.post(
        "/api/services/",
        {"name": "book-parser", "namespace": "b2v", "image": "reg.io/b2v/parser"},
        format="json",
    )
    assert r.status_code == 201
    names = MetricTemplate.objects.filter(service__name="book-parser").values_list(
        "name", flat=True
    )
    assert list(names) == list(templates.BUILTIN)


def _inline_post(service, rows):
    data = {
        "name": service.name,
        "namespace": service.namespace,
        "image": service.image,
        "port": service.port,
        "replicas": service.replicas,
        "cpu_request": service.cpu_request,
        "cpu_limit": service.cpu_limit,
        "memory_request": service.memory_request,
        "memory_limit": service.memory_limit,
        "stable_tag": service.stable_tag,
        "secret_env": "{}",
        "default_steps": "null",
        "default_analysis": "{}",
        "hooks-TOTAL_FORMS": "0",
        "hooks-INITIAL_FORMS": "0",
        "metric_templates-TOTAL_FORMS": str(len(rows)),
        "metric_templates-INITIAL_FORMS": str(sum(1 for r in rows if r.get("id"))),
    }
    for i, row in enumerate(rows):
        for key, value in row.items():
            data[f"metric_templates-{i}-{key}"] = value
    return data


def _row(template: dict, **changes) -> dict:
    row = {
        k: ("" if v is None else v)
        for k, v in template.items()
        if k not in ("params", "critical", "dry_run", "enabled")
    }
    row["params"] = "{}"
    for flag in ("critical", "dry_run", "enabled"):
        if template.get(flag):
            row[flag] = "on"
    return {**row, **changes}


def test_admin_edits_templates_inline_and_refuses_bad_placeholders(admin_user, client, service):
    metric_templates_ensure_defaults(service=service)
    client.force_login(admin_user)
    url = f"/admin/deployments/service/{service.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200 and b"metric_templates-0-query" in page.content
    rows = []
    for t in service.metric_templates.order_by("id"):
        rows.append(_row(t.as_dict(), id=t.pk, service=service.pk))
    rows[1] = {**rows[1], "max_value": "2.5", "dry_run": "on"}
    rows.append(_row(templates.complete({"name": "queue_depth", "query": "q"}), service=service.pk))
    r = client.post(url, _inline_post(service, rows))
    assert r.status_code == 302, r.content.decode()[:3000]
    error_rate = service.metric_templates.get(name="error_rate")
    assert error_rate.max_value == 2.5 and error_rate.dry_run
    assert service.metric_templates.filter(name="queue_depth").exists()
    rows[1] = {**rows[1], "query": "rate(x{a='{{ service }}',b='{{ pod }}'}[1m])"}
    rows.pop()  # queue_depth exists now: sent as a new row again it would be a duplicate
    r = client.post(url, _inline_post(service, rows))
    assert r.status_code == 200
    assert b"unknown placeholder {{ pod }}" in r.content
    assert "pod" not in service.metric_templates.get(name="error_rate").query


def test_admin_add_gives_the_builtins(admin_user, client):
    from deployments.models import Service

    client.force_login(admin_user)
    service = Service(
        name="book-parser", namespace="b2v", image="reg.io/b2v/parser", stable_tag="v1"
    )
    rows = [_row(templates.complete({"name": "error_rate", "query": "e", "max_value": 1.0}))]
    r = client.post("/admin/deployments/service/add/", _inline_post(service, rows))
    assert r.status_code == 302, r.content.decode()[:3000]
    created = Service.objects.get(name="book-parser")
    names = list(created.metric_templates.order_by("id").values_list("name", flat=True))
    assert names[0] == "error_rate" and sorted(names) == sorted(templates.BUILTIN)
    assert created.metric_templates.get(name="error_rate").max_value == 1.0


def test_service_api_reads_and_replaces_its_templates(eng, service):
    metric_templates_ensure_defaults(service=service)
    url = f"/api/services/{service.name}/"
    assert [t["name"] for t in eng.get(url).json()["metric_templates"]] == list(templates.BUILTIN)
    body = {
        "metric_templates": [
            {"name": "error_rate", "max_value": 2.0},
            {"name": "queue_depth", "query": "max(q{ns='{{ namespace }}'})", "max_value": 10},
        ]
    }
    r = eng.patch(url, body, format="json")
    assert r.status_code == 200, r.json()
    got = {t["name"]: t for t in r.json()["metric_templates"]}
    assert set(got) == {"error_rate", "queue_depth"}
    assert got["error_rate"]["max_value"] == 2.0 and got["error_rate"]["stable_tolerance"] == 1.0
    assert got["queue_depth"]["failure_limit"] == 2
    bad = {"metric_templates": [{"name": "queue_depth", "query": "q{a='{{ pod }}'}"}]}
    r = eng.patch(url, bad, format="json")
    assert r.status_code == 422 and "query" in r.json()["detail"]["metric_templates"]["0"]
    r = eng.patch(url, {"metric_templates": [{"name": "fresh"}]}, format="json")
    assert r.status_code == 422 and "fresh: query" in r.json()["detail"]["metric_templates"][0]
    assert service.metric_templates.count() == 2  # nothing changed by refused requests


# The statistical judge reads each template's tolerance and weight ----------------------------


def _samples(rng, mean, n=12, spread=0.02):
    return list(rng.normal(mean, mean * spread, n))


def test_statistical_judge_uses_each_templates_tolerance_weight_and_direction():
    import numpy as np
    from scipy.stats import mannwhitneyu

    from deployments.judge import judge_step

    rng = np.random.default_rng(3)
    stable = {"p99_ms": _samples(rng, 150), "success": _samples(rng, 0.9)}
    canary = {"p99_ms": _samples(rng, 150 * 1.4), "success": _samples(rng, 0.9 * 0.8)}
    p99 = templates.complete({"name": "p99_ms", "query": "q", "effect_size_tolerance": 1.25})
    success = templates.complete(
        {"name": "success", "query": "q", "direction": "higher", "weight": 3.0}
    )
    result = judge_step({}, canary, stable, templates=[p99, success])
    by_name = {r.name: r for r in result.results}
    expected_p = mannwhitneyu(canary["p99_ms"], stable["p99_ms"], method="asymptotic").pvalue
    assert by_name["p99_ms"].p_value == pytest.approx(expected_p, rel=1e-9)
    assert by_name["p99_ms"].classification == "high" and by_name["p99_ms"].failed
    # higher is better: a 20 % drop is past the 1/1.25 tolerance and fails
    assert by_name["success"].classification == "low" and by_name["success"].failed
    assert result.score == 0.0
    # a tolerance of x1.5 lets the p99 through; success (weight 3 of 4) still fails
    p99["effect_size_tolerance"] = 1.5
    result = judge_step({}, canary, stable, templates=[p99, success])
    assert result.score == pytest.approx(25.0)
    # dry-run: shown, not scored; weight 0: left out
    success["dry_run"] = True
    result = judge_step({}, canary, stable, templates=[p99, success])
    assert result.score == 100.0 and [r.name for r in result.results] == ["p99_ms", "success"]
    success["weight"] = 0.0
    assert [r.name for r in judge_step({}, canary, stable, templates=[p99, success]).results] == [
        "p99_ms"
    ]
