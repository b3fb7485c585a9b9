"""The trends API and page: the contract's shape, 400 naming the field, CSV, the schema."""

import datetime as dt
from urllib.parse import urlencode

import pytest

from analytics.product.tests.product_data import load, rows_from_spec

pytestmark = pytest.mark.django_db


def _rows():
    t = dt.datetime(2024, 1, 1, 10, tzinfo=dt.UTC)
    spec = [
        ("u1", "video_rendered", 0, {"video_style": "animated", "ai_cost_dollars": 1.5}),
        ("u1", "video_rendered", 1, {"video_style": "animated", "ai_cost_dollars": 0.5}),
        ("u2", "video_rendered", 1, {"video_style": "cinematic", "ai_cost_dollars": 2}),
        ("u2", "signup", 0, {}),
        ("u3", "signup", 8, {}),
    ]
    return rows_from_spec(spec, start=t)


def _get(client, **params):
    return client.get(f"/api/analytics/trends/?{urlencode(params, doseq=True)}")


def test_contract_shape(analytics_store, pm, api_client_for):
    load(_rows())
    client = api_client_for(pm)
    body = _get(
        client,
        series="video_rendered,signup",
        period="day",
        date_from="2024-01-01",
        date_to="2024-01-03",
        compare="previous",
    ).json()
    current = [s for s in body["series"] if s["compare"] == "current"]
    assert current == [
        {
            "event": "video_rendered",
            "label": "A",
            "breakdown_value": None,
            "compare": "current",
            "points": [
                {"period": "2024-01-01", "value": 1},
                {"period": "2024-01-02", "value": 2},
                {"period": "2024-01-03", "value": 0},
            ],
        },
        {
            "event": "signup",
            "label": "B",
            "breakdown_value": None,
            "compare": "current",
            "points": [
                {"period": "2024-01-01", "value": 1},
                {"period": "2024-01-02", "value": 0},
                {"period": "2024-01-03", "value": 0},
            ],
        },
    ]
    previous = [s for s in body["series"] if s["compare"] == "previous"]
    assert [p["period"] for p in previous[0]["points"]] == [
        "2023-12-29",
        "2023-12-30",
        "2023-12-31",
    ]
    assert body["previous_date_from"] == "2023-12-29"


def test_breakdown_filters_math(analytics_store, pm, api_client_for):
    load(_rows())
    body = _get(
        api_client_for(pm),
        series="video_rendered",
        math="sum",
        math_property="ai_cost_dollars",
        period="week",
        date_from="2024-01-01",
        date_to="2024-01-07",
        breakdown="video_style",
        breakdown_limit=1,
        filter=["video_style:regex:^(anim|cine)", "ai_cost_dollars:gte:0.5"],
    ).json()
    got = {s["breakdown_value"]: s["points"][0]["value"] for s in body["series"]}
    assert got == {"animated": 2.0, "$other": 2.0}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "series"),
        ({"series": "a b"}, "series"),
        ({"series": "a", "math": "mean"}, "math"),
        ({"series": "a", "math": "sum"}, "math_property"),
        ({"series": "a", "math_property": "n"}, "math_property"),
        ({"series": "a", "filter": "x:regex:(?=a)"}, "filter"),
        ({"series": "a", "filter": "x:regex:" + "a" * 201}, "filter"),
        ({"series": "a", "filter": "x:gt:abc"}, "filter"),
        ({"series": "a", "filter": "x:is_set:1"}, "filter"),
        ({"series": "a", "filter": "x:like:1"}, "filter"),
        ({"series": "a", "breakdown": "user:email"}, "breakdown"),
        ({"series": "a", "formula": "A/C"}, "formula"),
        ({"series": "a", "compare": "next"}, "compare"),
        ({"series": "a", "breakdown_limit": "0"}, "breakdown_limit"),
        ({"series": "a", "date_from": "2024-02-01", "date_to": "2024-01-01"}, "date_from"),
    ],
)
def test_bad_input_names_the_field(analytics_store, pm, api_client_for, params, field):
    response = _get(api_client_for(pm), **params)
    # 422: a rule the schema cannot state (a range that ends before it starts, the grammar of
    # a filter or a formula, a math that needs a property); 400: what the schema refuses
    assert response.status_code in (400, 422)
    assert response.json()["error"] == {400: "invalid", 422: "unprocessable"}[response.status_code]
    assert field in response.json()["detail"], response.json()


def test_schema_describes_trends(pm, api_client_for):
    schema = api_client_for(pm).get("/api/schema/?format=json").json()
    op = schema["paths"]["/api/analytics/trends/"]["get"]
    assert set(op["responses"]) >= {"200", "400", "401", "403", "503"}
    names = {p["name"] for p in op["parameters"]}
    assert {"series", "math", "period", "date_from", "date_to", "breakdown", "compare"} <= names
    assert {"filter", "formula", "math_property", "breakdown_limit"} <= names


def test_page_and_csv(analytics_store, pm, client):
    load(_rows())
    client.force_login(pm)
    url = "/analytics/trends/?series=video_rendered&date_from=2024-01-01&date_to=2024-01-03"
    response = client.get(url)
    assert response.status_code == 200
    assert b"trends" in response.content
    csv = client.get(url + "&csv=points")
    assert csv["Content-Type"] == "text/csv"
    lines = csv.content.decode().splitlines()
    assert lines[0] == "Series,Period,Value"
    assert "A: video_rendered,2024-01-02,2" in lines
    assert client.get("/analytics/trends/?series=x&filter=n:gt:z").status_code == 400


@pytest.mark.parametrize("name", ["lifecycle", "stickiness"])
def test_lifecycle_and_stickiness_api_and_pages(analytics_store, pm, api_client_for, client, name):
    load(_rows())
    params = "event=video_rendered&date_from=2024-01-01&date_to=2024-01-14"
    response = api_client_for(pm).get(f"/api/analytics/{name}/?{params}")
    assert response.status_code == 200
    body = response.json()
    if name == "lifecycle":
        assert body["periods"][0] == {
            "period": "2024-01-01",
            "new": 2,
            "returning": 0,
            "resurrecting": 0,
            "dormant": 0,
        }
        assert body["periods"][1]["dormant"] == -2
    else:
        assert body["weeks"][0]["by_days"] == [1, 1, 0, 0, 0, 0, 0]
    bad = api_client_for(pm).get(f"/api/analytics/{name}/?event=a%20b")
    assert bad.status_code == 400 and "event" in bad.json()["detail"]
    client.force_login(pm)
    assert client.get(f"/analytics/{name}/?{params}").status_code == 200
    assert client.get(f"/analytics/{name}/?{params}&csv={name}")["Content-Type"] == "text/csv"
