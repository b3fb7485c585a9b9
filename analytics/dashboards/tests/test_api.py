"""The dashboards API: create, pin, reorder, refresh, results with a range override; 400s
name the field; readers read and only editors write; the schema describes every route."""

import datetime as dt
from unittest import mock

import pytest

from analytics.dashboards.services import dashboard_default
from analytics.product.tests.product_data import load, rows_from_spec

pytestmark = pytest.mark.django_db
BASE = "/api/analytics/dashboards/"


@pytest.fixture
def pm_api(api_client_for, pm):
    return api_client_for(pm)


def test_create_pin_reorder_and_read(pm_api):
    made = pm_api.post(BASE, {"name": "Growth", "last_days": 30}, format="json")
    assert made.status_code == 201, made.json()
    board = made.json()
    assert board["last_days"] == 30 and board["tiles"] == []
    assert board["refresh"]["state"] == "idle"
    url = f"{BASE}{board['id']}/"
    pins = [
        pm_api.post(
            url + "tiles/",
            {"analysis": name, "params": params, "title": f"T{i}"},
            format="json",
        )
        for i, (name, params) in enumerate(
            [
                ("trends", {"series": "signup", "filter": ["a:eq:1", "b:is_set"]}),
                ("funnel", {"steps": "signup,video_rendered", "window_days": 7}),
            ]
        )
    ]
    assert [p.status_code for p in pins] == [201, 201]
    assert pins[0].json()["params"]["filter"] == ["a:eq:1", "b:is_set"]
    assert pins[1].json()["params"]["window_days"] == "7"
    ids = [p.json()["id"] for p in pins]
    order = pm_api.post(url + "tiles/order/", {"tiles": ids[::-1]}, format="json")
    assert [t["id"] for t in order.json()["tiles"]] == ids[::-1]
    renamed = pm_api.patch(f"{url}tiles/{ids[0]}/", {"title": "Signups"}, format="json")
    assert renamed.json()["title"] == "Signups"
    listed = pm_api.get(BASE).json()
    assert {d["name"]: d["tile_count"] for d in listed} == {"Overview": 4, "Growth": 2}
    assert pm_api.delete(f"{url}tiles/{ids[1]}/").status_code == 204
    assert [t["id"] for t in pm_api.get(url).json()["tiles"]] == [ids[0]]


def test_bad_input_names_the_field(pm_api):
    board = pm_api.post(BASE, {"name": "B"}, format="json").json()
    url = f"{BASE}{board['id']}/"
    cases = [
        (url + "tiles/", {"analysis": "trends", "params": {"series": "s", "math": "x"}}),
        (url + "tiles/", {"analysis": "nope"}),
        (url + "tiles/", {"analysis": "trends", "params": {"series": True}}),
        (url + "tiles/", {"analysis": "trends", "params": "text"}),
        (url + "tiles/order/", {"tiles": [999]}),
        (BASE, {"name": "B"}),
        (BASE, {"name": "C", "last_days": 5, "date_from": "2024-01-01", "date_to": "2024-01-02"}),
        (BASE, {"name": "D", "date_from": "2024-02-01"}),
    ]
    fields = ["params.math", "analysis", "params", "params", "tiles", "name", "last_days"]
    fields.append("date_from")
    for (path, body), field in zip(cases, fields, strict=True):
        answer = pm_api.post(path, body, format="json")
        # 400: the schema refuses it; 409: a name taken; 422: the parameters or range rules
        assert answer.status_code in (400, 409, 422), (path, body, answer.json())
        assert field in answer.json()["detail"], (field, answer.json())
    results = pm_api.get(url + "results/?date_from=2024-02-01")
    assert results.status_code == 422 and "date_from" in results.json()["detail"]
    assert pm_api.get(f"{BASE}{2**40}/").status_code == 404


def test_readers_read_and_editors_write(api_client_for, engineer, pm_api):
    board = pm_api.post(BASE, {"name": "B"}, format="json").json()
    reader = api_client_for(engineer)
    assert reader.get(f"{BASE}{board['id']}/").status_code == 200
    assert reader.post(f"{BASE}{board['id']}/refresh/").status_code == 403
    assert reader.delete(f"{BASE}{board['id']}/").status_code == 403
    default = dashboard_default()
    refused = pm_api.delete(f"{BASE}{default.pk}/")
    assert refused.status_code == 409 and refused.json()["error"] == "conflict"


def test_refresh_queues_once_and_results_take_a_range(
    analytics_store, pm_api, django_capture_on_commit_callbacks
):
    t = dt.datetime(2024, 1, 1, 10, tzinfo=dt.UTC)
    load(rows_from_spec([("u1", "signup", 0, {}), ("u2", "signup", 1, {})], start=t))
    board = pm_api.post(BASE, {"name": "B"}, format="json").json()
    url = f"{BASE}{board['id']}/"
    pm_api.post(
        url + "tiles/", {"analysis": "trends", "params": {"series": "signup"}}, format="json"
    )
    with (
        mock.patch("analytics.dashboards.tasks.refresh_dashboard.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        first = pm_api.post(url + "refresh/")
        again = pm_api.post(url + "refresh/")
    assert first.status_code == again.status_code == 202
    assert first.json()["refresh"] | {"started_at": None} == {
        "state": "queued", "total": 1, "done": 0, "failed": 0, "started_at": None,
        "finished_at": None,
    }  # fmt: skip
    assert delay.call_count == 1  # a refresh already queued is not queued twice
    got = pm_api.get(url + "results/?date_from=2024-01-01&date_to=2024-01-02").json()
    assert got["date_from"] == "2024-01-01"
    tile = got["tiles"][0]
    assert tile["status"] == "ok" and tile["params"]["date_to"] == "2024-01-02"
    assert tile["result"]["series"][0]["points"] == [
        {"period": "2024-01-01", "value": 1},
        {"period": "2024-01-02", "value": 1},
    ]


def test_the_schema_describes_the_routes(pm_api):
    schema = pm_api.get("/api/schema/?format=json").json()
    paths = schema["paths"]
    for path, methods in {
        "/api/analytics/dashboards/": {"get", "post"},
        "/api/analytics/dashboards/{id}/": {"get", "patch", "delete"},
        "/api/analytics/dashboards/{id}/tiles/": {"post"},
        "/api/analytics/dashboards/{id}/tiles/order/": {"post"},
        "/api/analytics/dashboards/{id}/tiles/{tile_pk}/": {"patch", "delete"},
        "/api/analytics/dashboards/{id}/refresh/": {"post"},
        "/api/analytics/dashboards/{id}/results/": {"get"},
    }.items():
        assert methods <= set(paths[path]), path
    body = paths["/api/analytics/dashboards/{id}/tiles/"]["post"]["requestBody"]["content"]
    assert list(body) == ["application/json"]
    tile_input = schema["components"]["schemas"]["DashboardTileInputRequest"]
    assert tile_input["properties"]["params"]["additionalProperties"]["anyOf"]
