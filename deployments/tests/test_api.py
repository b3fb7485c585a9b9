"""The deployments API contract: paths, fields, status codes, roles, field-naming errors."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deployments.models import Rollout, RolloutStatus
from deployments.tests.conftest import FAST_ANALYSIS

pytestmark = pytest.mark.django_db


@pytest.fixture
def eng(engineer, api_client_for):
    return api_client_for(engineer)


def test_service_create_read_patch(eng):
    body = {
        "name": "book-parser",
        "namespace": "book2video-production",
        "image": "reg.io/b2v/parser",
        "replicas": 3,
    }
    r = eng.post("/api/services/", body, format="json")
    assert r.status_code == 201, r.json()
    data = r.json()
    assert data["name"] == "book-parser" and data["port"] == 8000 and data["cpu_request"] == "500m"
    assert data["memory_limit"] == "4Gi" and data["current_rollout"] is None
    assert eng.get("/api/services/book-parser/").json()["replicas"] == 3
    r = eng.patch("/api/services/book-parser/", {"replicas": 5}, format="json")
    assert r.status_code == 200 and r.json()["replicas"] == 5
    assert eng.post("/api/services/", body, format="json").json()["detail"] == {
        "name": ["a service named 'book-parser' already exists"]
    }
    assert [s["name"] for s in eng.get("/api/services/").json()] == ["book-parser"]


@pytest.mark.parametrize(
    "field,value",
    [
        ("name", "Not_A_Label"),
        ("namespace", ""),
        ("image", "repo:tag:x"),
        ("replicas", 0),
        ("port", 70000),
    ],
)
def test_service_bad_field_is_named(eng, field, value):
    body = {"name": "ok", "namespace": "ns", "image": "reg.io/ok", field: value}
    r = eng.post("/api/services/", body, format="json")
    assert r.status_code == 400
    assert r.json()["error"] == "invalid" and field in r.json()["detail"]


def test_rollout_start_detail_contract(eng, service):
    r = eng.post(
        "/api/rollouts/",
        {"service": service.name, "image_tag": "v2", "analysis": FAST_ANALYSIS},
        format="json",
    )
    assert r.status_code == 201, r.json()
    data = r.json()
    for key in (
        "id",
        "service",
        "image_tag",
        "status",
        "current_step",
        "current_weight",
        "steps",
        "analysis",
        "events",
        "latest_samples",
        "reason",
    ):
        assert key in data
    assert data["service"] == "api-gateway" and data["status"] == "pending"
    assert [s["weight"] for s in data["steps"]] == [10, 25, 50, 100]
    assert data["analysis"]["interval_seconds"] == 0.3
    assert [t["name"] for t in data["metrics"]] == [
        "request_rate",
        "error_rate",
        "p99_ms",
        "cpu_percent",
        "memory_percent",
    ]
    error_rate = next(t for t in data["metrics"] if t["name"] == "error_rate")
    assert error_rate["max_value"] == 5.0 and error_rate["failure_limit"] == 2
    assert all(r["verdict"] is None for r in data["metric_results"])
    assert data["reverts"] is None
    assert data["latest_samples"] == {"stable": None, "canary": None}
    assert data["events"][0]["kind"] == "start"
    assert eng.get(f"/api/rollouts/{data['id']}/").json()["id"] == data["id"]
    listed = eng.get("/api/rollouts/?service=api-gateway&status=pending").json()
    assert [r["id"] for r in listed["results"]] == [data["id"]]
    assert eng.get("/api/rollouts/?status=done").status_code == 400


@pytest.mark.parametrize(
    "patch,field",
    [
        ({"service": "nope"}, "service"),
        ({"image_tag": "-bad"}, "image_tag"),
        ({"image_tag": "a" * 129}, "image_tag"),
        ({"image_tag": "v 2"}, "image_tag"),
        ({"steps": [10, 10, 100]}, "steps"),
        ({"steps": [50, 25, 100]}, "steps"),
        ({"steps": [10, 50]}, "steps"),
        ({"steps": []}, "steps"),
        ({"steps": [{"weight": 100, "pause": -1}]}, "steps"),
        ({"analysis": {"interval_seconds": 0}}, "analysis"),
        ({"analysis": {"max_error_rate": "lots"}}, "analysis"),
        ({"analysis": {"bogus": 1}}, "analysis"),
        ({"analysis": {"judge": "statistical", "samples_per_step": 2}}, "analysis"),
        ({"analysis": {"pass_score": 80, "marginal_score": 90}}, "analysis"),
        ({"analysis": {"statistical_metrics": {"p99_ms": {"allowed_increase": 0.5}}}}, "analysis"),
        ({"analysis": {"judge": "bayes"}}, "analysis"),
        ({"image_tag": "v1"}, "image_tag"),
    ],
)
def test_rollout_bad_input_names_the_field(eng, service, patch, field):
    r = eng.post(
        "/api/rollouts/", {"service": service.name, "image_tag": "v2", **patch}, format="json"
    )
    # 400: the schema refuses it; 404: no such service; 409: already the stable version;
    # 422: rules between the steps, which the schema cannot state
    expected = {
        "{'service': 'nope'}": 404,
        "{'steps': [10, 10, 100]}": 422,
        "{'steps': [50, 25, 100]}": 422,
        "{'steps': [10, 50]}": 422,
        "{'image_tag': 'v1'}": 409,
        "{'analysis': {'judge': 'statistical', 'samples_per_step': 2}}": 422,
        "{'analysis': {'pass_score': 80, 'marginal_score': 90}}": 422,
    }.get(repr(patch), 400)
    assert r.status_code == expected, r.json()
    assert field in r.json()["detail"]
    assert not Rollout.objects.exists()


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    tag=st.one_of(st.text(max_size=140), st.integers(), st.none()),
    steps=st.one_of(
        st.lists(st.one_of(st.integers(-5, 120), st.text(max_size=3)), max_size=5),
        st.text(max_size=5),
    ),
)
def test_rollout_fuzzed_input_is_400_or_201_never_500(eng, service, tag, steps):
    r = eng.post(
        "/api/rollouts/", {"service": service.name, "image_tag": tag, "steps": steps}, format="json"
    )
    assert r.status_code in (201, 400, 409, 422), r.content
    if r.status_code != 201:
        assert set(r.json()["detail"]) <= {"image_tag", "steps"}
    Rollout.objects.all().delete()


def test_second_start_is_409(eng, service):
    body = {"service": service.name, "image_tag": "v2"}
    assert eng.post("/api/rollouts/", body, format="json").status_code == 201
    r = eng.post("/api/rollouts/", {**body, "image_tag": "v3"}, format="json")
    assert r.status_code == 409 and r.json()["error"] == "rollout_conflict"


def test_controls_and_409_when_they_do_not_fit(eng, service):
    rid = eng.post(
        "/api/rollouts/", {"service": service.name, "image_tag": "v2"}, format="json"
    ).json()["id"]
    assert eng.post(f"/api/rollouts/{rid}/resume/").status_code == 409
    Rollout.objects.filter(pk=rid).update(status=RolloutStatus.PROGRESSING)
    r = eng.post(f"/api/rollouts/{rid}/pause/", {"reason": "look"}, format="json")
    assert r.status_code == 200 and r.json()["status"] == "paused"
    assert eng.post(f"/api/rollouts/{rid}/pause/").status_code == 409
    assert eng.post(f"/api/rollouts/{rid}/resume/").json()["status"] == "progressing"
    assert eng.post(f"/api/rollouts/{rid}/promote/").status_code == 200
    assert eng.post(f"/api/rollouts/{rid}/promote/").status_code == 409
    r = eng.post(f"/api/rollouts/{rid}/abort/", {"reason": "bad idea"}, format="json")
    assert r.status_code == 200 and "bad idea" in r.json()["reason"]
    assert eng.post(f"/api/rollouts/{rid}/abort/").status_code == 409
    Rollout.objects.filter(pk=rid).update(status=RolloutStatus.ABORTED)
    r = eng.post(f"/api/rollouts/{rid}/retry/")
    assert r.status_code == 201 and r.json()["image_tag"] == "v2" and r.json()["retry_of"] == rid
    assert eng.get("/api/rollouts/999999/").status_code == 404


def test_product_role_gets_403_on_every_write_but_reads(pm, api_client_for, service):
    client = api_client_for(pm)
    rollout = Rollout.objects.create(service=service, image_tag="v2", from_tag="v1")
    assert client.get("/api/services/").status_code == 200
    assert client.get(f"/api/rollouts/{rollout.pk}/").status_code == 200
    writes = [
        ("post", "/api/services/", {"name": "x", "namespace": "y", "image": "z"}),
        ("patch", f"/api/services/{service.name}/", {"replicas": 2}),
        ("post", "/api/rollouts/", {"service": service.name, "image_tag": "v2"}),
    ] + [
        ("post", f"/api/rollouts/{rollout.pk}/{a}/", {})
        for a in ("pause", "resume", "promote", "abort", "retry")
    ]
    for method, url, body in writes:
        r = getattr(client, method)(url, body, format="json")
        assert r.status_code == 403, (url, r.status_code)
        assert r.json()["error"] == "forbidden"


def test_anonymous_is_refused(client, service):
    assert client.get("/api/rollouts/").status_code in (401, 403)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=1000000", "limit"),
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("offset=99999999999999999999", "offset"),
        ("offset=-1", "offset"),
    ],
)
def test_rollout_pagination_has_a_maximum(eng, query, field):
    response = eng.get(f"/api/rollouts/?{query}")
    assert response.status_code == 400
    assert field in response.json()["detail"]
    assert eng.get("/api/rollouts/?limit=200&offset=100000").status_code == 200
