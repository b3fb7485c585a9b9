"""Paths: every sequence, node, edge and edge's users against the pandas reference, plus the
API (contract, 400 naming the field, schema), the pages, CSV and the registry."""

import datetime as dt
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.product.common import UserSelect
from analytics.product.paths import Bound, PathsQuery, path_edge_users, paths
from analytics.product.tests import reference
from analytics.product.tests.product_data import BASE, events, load, rows_from_spec

pytestmark = pytest.mark.django_db
FAST = settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
NAMES = ["a", "b", "c", "d"]


def _squeezed(rows):
    """The drawn events within 5 days instead of 100, so paths get long and gaps vary from
    milliseconds to days (ties and period-boundary instants kept)."""
    return [{**r, "timestamp": BASE + (r["timestamp"] - BASE) / 20} for r in rows]


@FAST
@given(
    rows=events(NAMES, max_size=60).map(_squeezed),
    anchor=st.sampled_from(["start", "end", "none"]),
    anchor_event=st.sampled_from(NAMES),
    steps=st.integers(2, 6),
    bound=st.sampled_from(list(Bound)),
    bound_minutes=st.sampled_from([1, 30, 240, 1440, 4000]),
    exclude=st.lists(st.sampled_from(NAMES), max_size=2, unique=True),
    top=st.integers(1, 3),
    start_day=st.integers(0, 4),
    length=st.integers(0, 4),
    late=st.booleans(),
)
def test_paths_match_pandas(
    analytics_store,
    rows,
    anchor,
    anchor_event,
    steps,
    bound,
    bound_minutes,
    exclude,
    top,
    start_day,
    length,
    late,
):
    frame = load(rows, late=late)
    date_from = dt.date(2024, 1, 1) + dt.timedelta(days=start_day)
    date_to = date_from + dt.timedelta(days=length)
    exclude = tuple(e for e in exclude if anchor == "none" or e != anchor_event)
    spec = {
        "date_from": date_from,
        "date_to": date_to,
        "start_event": anchor_event if anchor == "start" else "",
        "end_event": anchor_event if anchor == "end" else "",
        "steps": steps,
        "bound_minutes": bound_minutes,
        "exclude": exclude,
        "top": top,
    }
    got = paths(PathsQuery(bound=bound, **spec))
    expected = reference.paths(frame, bound=bound.value, **spec)
    assert got["users"] == sum(expected["sequences"].values())
    assert {(s["step"], s["event"]): s["users"] for s in got["nodes"]} == expected["nodes"]
    edges = {(e["step"], e["source"], e["target"]): e["users"] for e in got["edges"]}
    assert edges == expected["edges"]
    top_paths = sorted(expected["sequences"].items(), key=lambda kv: (-kv[1], kv[0]))[:20]
    assert [(tuple(p["events"]), p["users"]) for p in got["paths"]] == top_paths
    # every path ends (or, before an end event, starts) at exactly one node
    assert sum(n["path_ends"] for n in got["nodes"]) == got["users"]
    query = PathsQuery(bound=bound, **spec)
    for (step, source, target), users in list(expected["edge_users"].items())[:3]:
        listed = path_edge_users(
            query, step=step, source=source, target=target, limit=1000, offset=0
        )
        assert listed == {"total": len(users), "users": users}


def _minute_rows(spec, t0=dt.datetime(2024, 1, 2, 9, tzinfo=dt.UTC)):
    return rows_from_spec([(u, e, m / 1440, {}) for u, e, m in spec], start=t0)


STORY = [
    ("u1", "signup", 0),
    ("u1", "project_created", 5),
    ("u1", "video_rendered", 10),
    ("u1", "video_rendered", 200),  # after a 190-minute gap: another session
    ("u2", "signup", 0),
    ("u2", "project_created", 1),
    ("u2", "session_end", 2),
    ("u3", "signup", 0),
    ("u3", "feature_used", 3),
    ("u4", "project_created", 0),  # no signup: no path after signup
]
DAY = {"date_from": dt.date(2024, 1, 2), "date_to": dt.date(2024, 1, 2)}


def test_paths_after_an_event_by_session_and_by_window(analytics_store):
    load(_minute_rows(STORY))
    got = paths(PathsQuery(start_event="signup", steps=4, **DAY))
    assert got["users"] == 3
    assert [(tuple(p["events"]), p["users"]) for p in got["paths"]] == [
        (("signup", "feature_used"), 1),
        (("signup", "project_created", "session_end"), 1),
        (("signup", "project_created", "video_rendered"), 1),
    ]
    assert {(e["step"], e["source"], e["target"]): e["users"] for e in got["edges"]} == {
        (1, "signup", "project_created"): 2,
        (1, "signup", "feature_used"): 1,
        (2, "project_created", "session_end"): 1,
        (2, "project_created", "video_rendered"): 1,
    }
    wide = paths(PathsQuery(start_event="signup", steps=4, bound_minutes=300, **DAY))
    assert ["signup", "project_created", "video_rendered", "video_rendered"] in [
        p["events"] for p in wide["paths"]
    ]
    window = paths(
        PathsQuery(start_event="signup", steps=4, bound=Bound.WINDOW, bound_minutes=2, **DAY)
    )
    assert [(p["events"], p["users"]) for p in window["paths"]] == [
        (["signup"], 2),
        (["signup", "project_created", "session_end"], 1),
    ]
    # top 1 event per step: the rest is $other
    top1 = paths(PathsQuery(start_event="signup", steps=3, top=1, **DAY))
    assert {(n["step"], n["event"]): n["users"] for n in top1["nodes"]} == {
        (1, "signup"): 3,
        (2, "project_created"): 2,
        (2, "$other"): 1,
        (3, "session_end"): 1,
        (3, "$other"): 1,
    }
    users = path_edge_users(
        PathsQuery(start_event="signup", steps=3, top=1, **DAY),
        step=1,
        source="signup",
        target="$other",
        limit=10,
        offset=0,
    )
    assert users == {"total": 1, "users": ["u3"]}


def test_paths_before_an_event_and_exclusions(analytics_store):
    load(_minute_rows(STORY))
    got = paths(PathsQuery(end_event="video_rendered", steps=3, bound_minutes=300, **DAY))
    # the last video_rendered of u1, and the two events before it
    assert got["paths"] == [
        {"events": ["project_created", "video_rendered", "video_rendered"], "users": 1, "share": 1}
    ]
    assert [n["step"] for n in got["nodes"]] == [1, 2, 3]
    excluded = paths(PathsQuery(start_event="signup", steps=3, exclude=("project_created",), **DAY))
    assert sorted(tuple(p["events"]) for p in excluded["paths"]) == [
        ("signup", "feature_used"),
        ("signup", "session_end"),
        ("signup", "video_rendered"),
    ]
    only_u2 = UserSelect("u2", "SELECT 'u2' AS user_id")
    mine = paths(PathsQuery(start_event="signup", user_filter=only_u2, **DAY))
    assert mine["users"] == 1


def _api(client, path="/api/analytics/paths/", **params):
    return client.get(f"{path}?{urlencode(params)}")


def test_api_contract_and_drill_down(analytics_store, pm, api_client_for):
    load(_minute_rows(STORY))
    client = api_client_for(pm)
    body = _api(
        client, start_event="signup", steps=3, date_from="2024-01-02", date_to="2024-01-02"
    ).json()
    assert set(body) == {
        "date_from", "date_to", "start_event", "end_event", "steps", "bound", "bound_minutes",
        "top", "exclude", "users", "nodes", "edges", "paths",
    }  # fmt: skip
    assert body["edges"][0] == {
        "step": 1,
        "source": "signup",
        "target": "project_created",
        "users": 2,
    }
    assert body["nodes"][0] == {"step": 1, "event": "signup", "users": 3, "path_ends": 0}
    listed = _api(
        client,
        "/api/analytics/paths/users/",
        start_event="signup",
        steps=3,
        date_from="2024-01-02",
        date_to="2024-01-02",
        step=1,
        source="signup",
        target="project_created",
        page_size=1,
        page=2,
    ).json()
    assert listed == {"total": 2, "users": ["u2"]}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start_event": "a b"}, "start_event"),
        ({"start_event": "a", "end_event": "b"}, "end_event"),
        ({"steps": "11"}, "steps"),
        ({"steps": "1"}, "steps"),
        ({"bound": "day"}, "bound"),
        ({"bound_minutes": "0"}, "bound_minutes"),
        ({"top": "21"}, "top"),
        ({"exclude": "a,b c"}, "exclude"),
        ({"start_event": "a", "exclude": "a"}, "exclude"),
        ({"date_from": "2024-02-01", "date_to": "2024-01-01"}, "date_from"),
        ({"in_cohort": "x"}, "in_cohort"),
    ],
)
def test_bad_input_names_the_field(analytics_store, pm, api_client_for, params, field):
    response = _api(api_client_for(pm), **params)
    # 400: the schema refuses it; 422: a rule it cannot state (start and end together, an
    # excluded event that is the start, a range that ends before it starts, the last step)
    assert response.status_code in (400, 422)
    assert response.json()["error"] == {400: "invalid", 422: "unprocessable"}[response.status_code]
    assert field in response.json()["detail"], response.json()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "step"),
        ({"step": "1", "source": "a"}, "target"),
        ({"step": "5", "steps": "5", "source": "a", "target": "b"}, "step"),
        ({"step": "1", "source": "a", "target": "b", "page_size": "5000"}, "page_size"),
    ],
)
def test_bad_drill_down_names_the_field(analytics_store, pm, api_client_for, params, field):
    response = _api(api_client_for(pm), "/api/analytics/paths/users/", **params)
    # 400: the schema refuses it; 422: a rule it cannot state (start and end together, an
    # excluded event that is the start, a range that ends before it starts, the last step)
    assert response.status_code in (400, 422)
    assert response.json()["error"] == {400: "invalid", 422: "unprocessable"}[response.status_code]
    assert field in response.json()["detail"], response.json()


def test_schema_describes_paths(pm, api_client_for):
    schema = api_client_for(pm).get("/api/schema/?format=json").json()
    op = schema["paths"]["/api/analytics/paths/"]["get"]
    assert set(op["responses"]) >= {"200", "400", "401", "403", "503"}
    names = {p["name"] for p in op["parameters"]}
    assert {
        "start_event",
        "end_event",
        "steps",
        "bound",
        "bound_minutes",
        "exclude",
        "top",
    } <= names
    assert {"date_from", "date_to", "in_cohort"} <= names
    assert "period" not in names and "breakdown" not in names
    ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    output = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert set(output["required"]) >= {"nodes", "edges", "paths", "users"}
    users = schema["paths"]["/api/analytics/paths/users/"]["get"]
    assert {"step", "source", "target", "page", "page_size"} <= {
        p["name"] for p in users["parameters"]
    }


def test_page_chart_csv_and_users_page(analytics_store, pm, client):
    load(_minute_rows(STORY))
    client.force_login(pm)
    first = client.get("/analytics/paths/")
    assert first.status_code == 302 and "start_event=signup" in first["Location"]
    url = "/analytics/paths/?start_event=signup&steps=3&date_from=2024-01-02&date_to=2024-01-02"
    body = client.get(url).content.decode()
    assert '"sankey"' in body and "/analytics/paths/users/?" in body
    lines = client.get(url + "&csv=edges").content.decode().splitlines()
    assert lines[0] == "From step,Event,To step,Next event,Users,Of all paths"
    assert "1,signup,2,project_created,2,0.6666666666666666" in lines
    users_url = (
        url.replace("/paths/", "/paths/users/") + "&step=1&source=signup&target=project_created"
    )
    page = client.get(users_url)
    assert page.status_code == 200 and "u1" in page.content.decode()
    csv = client.get(users_url + "&csv=users").content.decode().splitlines()
    assert csv == ["User", "u1", "u2"]
    empty = client.get("/analytics/paths/?start_event=nothing&date_from=2024-01-02")
    assert "No data for these parameters" in empty.content.decode()
    assert client.get("/analytics/paths/?steps=99").status_code == 400


def test_save_edge_users_as_a_static_cohort(analytics_store, pm, client):
    from analytics.cohorts.models import Cohort

    load(_minute_rows(STORY))
    client.force_login(pm)
    url = (
        "/analytics/paths/users/?start_event=signup&steps=3&date_from=2024-01-02"
        "&date_to=2024-01-02&step=1&source=signup&target=project_created"
    )
    response = client.post(url, {"cohort_name": "made a project after signup"})
    assert response.status_code == 302
    cohort = Cohort.objects.get(name="made a project after signup")
    assert cohort.size == 2


def test_registry_runs_paths_with_a_user_filter(analytics_store):
    from analytics.product.registry import analysis_result

    load(_minute_rows(STORY))
    params = {"start_event": "signup", "date_from": "2024-01-02", "date_to": "2024-01-02"}
    assert analysis_result(name="paths", params=params)["users"] == 3
    only = UserSelect("u1", "SELECT 'u1' AS user_id")
    assert analysis_result(name="paths", params=params, user_filter=only)["users"] == 1


def test_paths_read_the_rollup_whatever_its_state(analytics_store):
    """Paths read each user's distinct times per event: one name at one millisecond counts
    once (a retried send with a new uuid), and rebuilding the rollup changes nothing."""
    from analytics.product.tests.product_data import rerun_rollup_backfill

    rows = _minute_rows(STORY)
    again = {**rows[1], "uuid": "00000000-0000-0000-0000-999999999999"}  # u1's project, twice
    load([*rows, again])
    q = PathsQuery(start_event="signup", steps=4, **DAY)
    expected = paths(q)
    assert ["signup", "project_created", "video_rendered"] in [
        p["events"] for p in expected["paths"]
    ]
    rerun_rollup_backfill(truncate=False)
    assert paths(q) == expected
    rerun_rollup_backfill(truncate=True)
    assert paths(q) == expected
