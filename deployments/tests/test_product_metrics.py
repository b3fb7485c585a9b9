"""A canary judged by its users' product events, end to end on the simulated cluster.

The simulated cluster emits the render traffic of both versions into the analytics store
(SIM_PRODUCT_TRAFFIC_SCALE compresses time: 0.3 s of analysis stands for 15 minutes of
traffic); the `render_success` template (kind `store`) judges it. A `quality-fault` canary keeps
error rate, latency and resources normal and is rolled back by that metric alone.
"""

import pytest

from deployments.metrics.store import RENDER_SUCCESS_TEMPLATE, StoreKind
from deployments.metrics.templates import complete, validate
from deployments.models import MetricSample, RolloutStatus
from deployments.services import (
    metric_template_ensure,
    metric_templates_ensure_defaults,
    rollout_start,
)
from deployments.tests.conftest import FAST_ANALYSIS

pytestmark = pytest.mark.django_db


@pytest.fixture
def renderer(service, settings, analytics_store):
    settings.SIM_PRODUCT_TRAFFIC_SCALE = 3000  # 0.3 s of analysis = 15 min of traffic
    metric_templates_ensure_defaults(service=service)
    metric_template_ensure(service=service, template=RENDER_SUCCESS_TEMPLATE)
    return service


def test_a_quality_fault_is_rolled_back_by_the_product_metric_alone(renderer, engineer, drive):
    rollout = rollout_start(
        service=renderer, image_tag="v7-quality-fault", by=engineer, analysis=FAST_ANALYSIS
    )
    rollout = drive(rollout, timeout=60)
    assert rollout.status == RolloutStatus.ROLLED_BACK
    assert "render_success" in rollout.reason and "sequential p=" in rollout.reason
    rollback = rollout.events.get(kind="rollback")
    assert "render_success" in rollback.message
    checks = {c["metric"]: c for c in rollout.last_judgement["checks"]}
    product = checks["render_success"]
    assert product["verdict"] == "fail" and product["kind"] == "store"
    assert product["detail"]["lift"] < 0 and product["detail"]["ci"][1] < 0
    assert product["detail"]["canary_users"] >= 50
    # what the error-rate, latency and resource limits saw: all normal
    assert {checks[m]["verdict"] for m in ("error_rate", "p99_ms", "cpu_percent")} == {"pass"}
    canary = MetricSample.objects.filter(rollout=rollout, version="canary")
    assert canary.exists() and all(s.error_rate < 1 for s in canary)
    assert all(s.values.get("render_success") is not None for s in canary)


def test_a_healthy_canary_passes_the_product_metric_and_is_promoted(renderer, engineer, drive):
    rollout = rollout_start(service=renderer, image_tag="v2", by=engineer, analysis=FAST_ANALYSIS)
    rollout = drive(rollout, timeout=60)
    assert rollout.status == RolloutStatus.PROMOTED, rollout.reason
    samples = MetricSample.objects.filter(rollout=rollout, version="canary")
    success = [s.values["render_success"] for s in samples if s.values.get("render_success")]
    assert success and all(0.85 < v < 0.99 for v in success)


def test_the_store_kind_validates_through_the_template_registry():
    assert validate(complete(RENDER_SUCCESS_TEMPLATE)) == {}
    bad = complete({**RENDER_SUCCESS_TEMPLATE, "params": {"event": "no spaces allowed"}})
    assert validate(bad) == {"params.event": "an event name ([A-Za-z0-9_$.:-], at most 200)"}
    assert StoreKind().validate({**bad, "query": "median"}) == {"query": "rate or conversion"}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_through_the_api_and_a_real_worker(celery_worker, renderer, engineer, api_client_for):
    from deployments.models import Rollout
    from deployments.tests.conftest import wait_for

    client = api_client_for(engineer)
    answer = client.post(
        "/api/rollouts/",
        {"service": renderer.name, "image_tag": "v7-quality-fault", "analysis": FAST_ANALYSIS},
        format="json",
    )
    assert answer.status_code == 201, answer.json()
    rid = answer.json()["id"]
    wait_for(lambda: Rollout.objects.get(pk=rid).is_finished, timeout=60)
    detail = client.get(f"/api/rollouts/{rid}/").json()
    assert detail["status"] == "rolled_back" and "render_success" in detail["reason"]
    assert detail["latest_samples"]["canary"]["error_rate"] < 5
    timeline = [e["message"] for e in detail["events"]]
    assert any("rolling back" in m and "render_success" in m for m in timeline)


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_rollout_page_names_the_product_metric(
    page, live_asgi, login, engineer, celery_worker, renderer, artifact
):
    from deployments.tests.test_browser import roll_out

    login(page, engineer)
    roll_out(page, live_asgi, renderer.name, "v7-quality-fault", interval="0.3")
    page.wait_for_selector("#status-badge.rolled_back", timeout=60000)
    assert "render_success" in page.locator("#reason").inner_text()
    detail = page.locator("#judgement .store-detail").inner_text()
    assert "video_completed per video_rendered" in detail and "sequential p" in detail
    assert "render_success" in page.locator("#timeline").inner_text()
    page.screenshot(path=artifact("rollout-product-metric.png"), full_page=True)
