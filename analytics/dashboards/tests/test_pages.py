"""Dashboard pages: the analytics landing page is the default dashboard, every analysis page
pins itself with its parameters, tiles move and go, readers cannot change anything."""

import datetime as dt
import json
from unittest import mock

import pytest

from analytics.dashboards import services
from analytics.dashboards.models import Dashboard
from analytics.product.tests.product_data import load, rows_from_spec

pytestmark = pytest.mark.django_db
RANGE = "date_from=2024-01-01&date_to=2024-01-31"


@pytest.fixture
def pm_client(client, pm):
    client.force_login(pm)
    return client


def _events():
    t = dt.datetime(2024, 1, 2, 10, tzinfo=dt.UTC)
    spec = [("u1", "signup", 0, {}), ("u2", "signup", 1, {}), ("u1", "video_rendered", 2, {})]
    load(rows_from_spec(spec, start=t))


def test_the_landing_page_is_the_default_dashboard(analytics_store, pm_client):
    _events()
    page = pm_client.get(f"/analytics/?{RANGE}")
    body = page.content.decode()
    assert page.status_code == 200
    assert "<h1>Overview</h1>" in body
    charts = json.loads(
        body.split('id="analytics-charts" type="application/json">')[1].split("<")[0]
    )
    assert body.count('class="panel tile"') == len(services.DEFAULT_TILES)
    assert len(charts) == len(services.DEFAULT_TILES) - 1  # no revenue: its tile says so
    assert "No data for these parameters" in body
    assert all(c["id"].startswith("tile-") for c in charts)
    assert "set by this page" in body and "Download CSV" in body
    # the overview analysis keeps its own page, linked from its tile
    assert "/analytics/overview/?" in body
    assert pm_client.get(f"/analytics/overview/?{RANGE}").status_code == 200
    bad = pm_client.get("/analytics/?date_from=2024-02-01&date_to=2024-01-01")
    assert bad.status_code == 400 and "date_from" in bad.content.decode()


def test_an_analysis_page_pins_itself_with_its_parameters(analytics_store, pm_client):
    _events()
    url = f"/analytics/trends/?series=signup&math=unique_users&{RANGE}&csv="
    page = pm_client.get(url).content.decode()
    assert "Pin to dashboard" in page
    form = page.split('action="/analytics/dashboards/pin/"')[1].split("</form>")[0]
    params = json.loads(form.split('name="params" value="')[1].split('"')[0].replace("&quot;", '"'))
    assert params == {
        "series": "signup",
        "math": "unique_users",
        "date_from": "2024-01-01",
        "date_to": "2024-01-31",
    }
    answer = pm_client.post(
        "/analytics/dashboards/pin/",
        {"analysis": "trends", "params": json.dumps(params), "new_dashboard": "Mine"},
    )
    board = Dashboard.objects.get(name="Mine")
    assert answer.status_code == 302 and answer["Location"] == f"/analytics/dashboards/{board.pk}/"
    assert board.tiles.get().params == params
    shown = pm_client.get(answer["Location"]).content.decode()
    assert "Trends" in shown and "tile-" in shown
    refused = pm_client.post(
        "/analytics/dashboards/pin/",
        {"analysis": "trends", "params": '{"math": "x"}', "dashboard": board.pk, "next": url},
        follow=True,
    )
    assert "Not pinned: params.series" in refused.content.decode()
    assert board.tiles.count() == 1


def test_tiles_move_remove_and_refresh_from_the_page(pm_client, django_capture_on_commit_callbacks):
    board = services.dashboard_create(name="B", by="t")
    a, b = (
        services.tile_add(dashboard=board, analysis=n, params={}, by="t")
        for n in ("revenue", "lifecycle")
    )
    url = f"/analytics/dashboards/{board.pk}/"
    pm_client.post(url, {"action": "down", "tile": a.pk})
    assert list(board.tiles.values_list("pk", flat=True)) == [b.pk, a.pk]
    pm_client.post(url, {"action": "remove", "tile": b.pk})
    assert list(board.tiles.values_list("pk", flat=True)) == [a.pk]
    with (
        mock.patch("analytics.dashboards.tasks.refresh_dashboard.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        pm_client.post(url, {"action": "refresh"})
    delay.assert_called_once_with(board.pk)
    pm_client.post(url, {"action": "range", "last_days": "14"})
    board.refresh_from_db()
    assert board.last_days == 14 and board.refresh_state == "queued"


def test_an_empty_dashboard_says_what_to_do(pm_client):
    board = services.dashboard_create(name="Empty", by="t")
    body = pm_client.get(f"/analytics/dashboards/{board.pk}/").content.decode()
    assert "No tiles on this dashboard yet" in body and "Pin to dashboard" in body


def test_readers_see_dashboards_but_cannot_change_them(client, engineer):
    client.force_login(engineer)
    board = services.dashboard_create(name="B", by="t")
    page = client.get(f"/analytics/dashboards/{board.pk}/").content.decode()
    assert "Refresh all tiles</button>" not in page and "Remove</button>" not in page
    assert (
        client.post(f"/analytics/dashboards/{board.pk}/", {"action": "refresh"}).status_code == 403
    )
    assert client.post("/analytics/dashboards/pin/", {"analysis": "trends"}).status_code == 403
    assert client.get("/analytics/dashboards/").status_code == 200
