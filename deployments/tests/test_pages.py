"""Server-rendered pages: services with the roll-out form, rollout, history; roles and errors."""

import pytest

from deployments.models import Rollout
from deployments.views import parse_steps, steps_text

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded(db):
    import io

    from deployments import demo

    demo.seed(stdout=io.StringIO())


def test_empty_state_explains_what_to_do(client, engineer):
    client.force_login(engineer)
    body = client.get("/deployments/").content.decode()
    assert "No services yet" in body and "POST /api/services/" in body
    assert "No finished rollout" in client.get("/deployments/history/").content.decode()


def test_services_page_lists_demo_services_with_outcomes(client, engineer, seeded):
    client.force_login(engineer)
    body = client.get("/deployments/").content.decode()
    for name in ("api-gateway", "video-renderer", "book-parser"):
        assert f'data-service="{name}"' in body
    assert "rolled_back" in body and "promoted" in body
    assert body.count("Start rollout") == 3
    assert 'value="10, 25, 50, 100"' in body
    filtered = client.get("/deployments/?namespace=nope").content.decode()
    assert "No service matches" in filtered


def test_pm_sees_no_roll_out_form_and_cannot_post(client, pm, seeded):
    client.force_login(pm)
    assert "Start rollout" not in client.get("/deployments/").content.decode()
    r = client.post("/deployments/services/api-gateway/rollout/", {"image_tag": "v9"})
    assert r.status_code == 403
    assert not Rollout.objects.filter(image_tag="v9").exists()
    rollout = Rollout.objects.first()
    page = client.get(f"/deployments/rollouts/{rollout.pk}/").content.decode()
    assert "Read-only" in page and 'id="actions"' not in page


def test_form_errors_are_shown_inline(client, engineer, seeded):
    client.force_login(engineer)
    r = client.post(
        "/deployments/services/api-gateway/rollout/",
        {
            "image_tag": "bad tag",
            "steps": "10, 5, 100",
            "interval_seconds": "x",
            "samples_per_step": "2",
        },
    )
    assert r.status_code == 400
    body = r.content.decode()
    assert "This value does not match the required pattern." in body
    assert "weights must increase step by step" in body
    assert "A valid number is required." in body
    assert 'value="bad tag"' in body  # what was typed is kept
    assert not Rollout.objects.filter(image_tag="bad tag").exists()


def test_form_starts_a_rollout_and_redirects(client, engineer, seeded):
    client.force_login(engineer)
    r = client.post(
        "/deployments/services/book-parser/rollout/",
        {
            "image_tag": "v5",
            "steps": "20:30, 60:hold, 100",
            "interval_seconds": "2",
            "samples_per_step": "2",
            "m-error_rate-shown": "1",
            "m-error_rate-max_value": "3",
            "m-error_rate-failure_limit": "2",
            "m-error_rate-inconclusive_limit": "1",
            "m-error_rate-enabled": "on",
            "m-request_rate-shown": "1",
            "m-request_rate-failure_limit": "2",
            "m-request_rate-inconclusive_limit": "1",
            "m-request_rate-enabled": "on",  # dry-run unticked: request_rate decides now
        },
    )
    rollout = Rollout.objects.get(image_tag="v5")
    assert r.status_code == 302 and r.url == f"/deployments/rollouts/{rollout.pk}/"
    assert rollout.steps == [
        {"weight": 20, "pause": 30.0},
        {"weight": 60, "pause": "indefinite"},
        {"weight": 100, "pause": None},
    ]
    assert rollout.analysis["interval_seconds"] == 2.0
    templates = {t["name"]: t for t in rollout.metrics}
    assert templates["error_rate"]["max_value"] == 3.0
    assert templates["request_rate"]["dry_run"] is False
    assert templates["p99_ms"]["max_value"] == 800.0  # rows not sent stay as the service has them
    page = client.get(r.url).content.decode()
    assert "book-parser" in page and "v1 → v5" in page and "hold" in page
    # A second start is refused with a message, not a trace.
    r = client.post("/deployments/services/book-parser/rollout/", {"image_tag": "v6"}, follow=True)
    assert "already has an unfinished rollout" in r.content.decode()


def test_history_filters_and_paginates(client, engineer, seeded):
    client.force_login(engineer)
    body = client.get("/deployments/history/").content.decode()
    assert body.count('<span class="badge rolled_back">') == 2
    assert body.count('<span class="badge promoted">') == 3
    only = client.get(
        "/deployments/history/?status=rolled_back&service=api-gateway"
    ).content.decode()
    assert only.count("<tr>") == 2  # header + one row
    assert "page 1 of 1" in client.get("/deployments/history/?page=99").content.decode()


def test_steps_text_round_trip():
    steps = [
        {"weight": 10, "pause": None},
        {"weight": 50, "pause": 60.0},
        {"weight": 100, "pause": "indefinite"},
    ]
    assert steps_text(steps) == "10, 50:60, 100:hold"
    assert parse_steps("10, 50:60, 100:hold") == [
        10,
        {"weight": 50, "pause": 60.0},
        {"weight": 100, "pause": "indefinite"},
    ]


def test_seed_demo_is_idempotent(seeded):
    import io

    from deployments import demo
    from deployments.models import MetricSample, Service

    counts = (Service.objects.count(), Rollout.objects.count(), MetricSample.objects.count())
    demo.seed(stdout=io.StringIO())
    assert (
        Service.objects.count(),
        Rollout.objects.count(),
        MetricSample.objects.count(),
    ) == counts
    assert counts[:2] == (3, 5)


def test_form_chooses_the_statistical_judge(client, engineer, seeded):
    client.force_login(engineer)
    page = client.get("/deployments/").content.decode()
    assert '<option value="statistical">' in page
    form = {"image_tag": "v5", "samples_per_step": "2", "judge": "statistical"}
    r = client.post("/deployments/services/book-parser/rollout/", form)
    assert r.status_code == 400
    assert "the statistical judge needs at least 3 samples per step" in r.content.decode()
    r = client.post("/deployments/services/book-parser/rollout/", {**form, "samples_per_step": "6"})
    rollout = Rollout.objects.get(image_tag="v5")
    assert r.status_code == 302 and rollout.analysis["judge"] == "statistical"
    assert rollout.analysis["samples_per_step"] == 6


def test_form_template_errors_are_shown(client, engineer, seeded):
    client.force_login(engineer)
    p99 = {
        "m-p99_ms-shown": "1",
        "m-p99_ms-max_value": "800",
        "m-p99_ms-failure_limit": "2",
        "m-p99_ms-inconclusive_limit": "1",
        "m-p99_ms-enabled": "on",
    }
    url = "/deployments/services/book-parser/rollout/"
    r = client.post(url, {"image_tag": "v5", **p99, "m-p99_ms-min_value": "900"})
    assert r.status_code == 400
    body = r.content.decode()
    assert "p99_ms: max_value must not be below min_value" in body
    assert 'value="900"' in body  # what was typed is kept
    r = client.post(url, {"image_tag": "v5", **p99, "m-p99_ms-failure_limit": "0"})
    assert "failure_limit: Ensure this value is greater than or equal to 1." in r.content.decode()
    r = client.post(
        url,
        {
            "image_tag": "v5",
            "new-name": "queue_depth",
            "new-query": 'max(q{ns="{{ namespace }}",pod="{{ pod }}"})',
            "new-max_value": "10",
        },
    )
    body = r.content.decode()
    assert "unknown placeholder {{ pod }}" in body and 'value="queue_depth"' in body
    assert not Rollout.objects.filter(image_tag="v5").exists()


def test_form_adds_a_promql_template_for_one_rollout(client, engineer, seeded):
    client.force_login(engineer)
    r = client.post(
        "/deployments/services/book-parser/rollout/",
        {
            "image_tag": "v5",
            "new-name": "queue_depth",
            "new-query": 'max(q{ns="{{ namespace }}",v="{{ version }}"})',
            "new-max_value": "10",
            "new-direction": "lower",
        },
    )
    assert r.status_code == 302, r.content.decode()[:2000]
    rollout = Rollout.objects.get(image_tag="v5")
    added = rollout.metrics[-1]
    assert added["name"] == "queue_depth" and added["max_value"] == 10.0
    assert not rollout.service.metric_templates.filter(name="queue_depth").exists()
    page = client.get(f"/deployments/rollouts/{rollout.pk}/").content.decode()
    assert 'data-template="queue_depth"' in page and "not measured" in page
    assert 'data-template="request_rate"' in page and "dry-run" in page
