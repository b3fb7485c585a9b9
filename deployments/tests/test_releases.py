"""Release annotations: rollouts as markers on the time-series charts of the analytics pages."""

import datetime as dt
import json
import re

import pytest

import charts
from deployments.models import Rollout, RolloutStatus
from deployments.selectors import release_markers

pytestmark = pytest.mark.django_db
T = dt.datetime(2024, 2, 10, 12, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def rollout(service, tag, status, started, finished=None):
    return Rollout.objects.create(
        service=service,
        image_tag=tag,
        from_tag="v1",
        status=status,
        started_at=started,
        finished_at=finished,
    )


@pytest.fixture
def history(service):
    rollout(service, "v2", RolloutStatus.PROMOTED, T, T + dt.timedelta(minutes=5))
    rollout(service, "v3-fault", RolloutStatus.ROLLED_BACK, T + dt.timedelta(days=1), None)
    Rollout.objects.filter(image_tag="v3-fault").update(
        finished_at=T + dt.timedelta(days=1, minutes=1)
    )
    # started before the range, ended in it
    rollout(service, "v4", RolloutStatus.ABORTED, T - dt.timedelta(days=30), T - HOUR)
    rollout(service, "v5", RolloutStatus.PROGRESSING, T + dt.timedelta(days=90))  # out of range


def test_markers_are_starts_promotions_and_rollbacks_in_the_range(history):
    markers = release_markers(start=T - dt.timedelta(days=1), end=T + dt.timedelta(days=2))
    assert [(m["kind"], m["label"]) for m in markers] == [
        ("rollback", "api-gateway:v4 aborted"),
        ("start", "api-gateway:v2 started"),
        ("promoted", "api-gateway:v2 promoted"),
        ("start", "api-gateway:v3-fault started"),
        ("rollback", "api-gateway:v3-fault rolled_back"),
    ]
    assert [m["at"] for m in markers] == sorted(m["at"] for m in markers)
    assert markers[-1]["at"] == (T + dt.timedelta(days=1, minutes=1)).isoformat()


def test_only_date_axes_get_markers():
    marker = [{"at": T.isoformat(), "kind": "promoted", "label": "x:v2 promoted"}]
    dated = charts.figure([], xaxis={"type": "date"})
    out = charts.with_releases(dated, marker)
    assert out["layout"]["shapes"][0]["x0"] == T.isoformat()
    assert out["layout"]["shapes"][0]["line"]["color"] == charts.POSITIVE
    assert out["layout"]["annotations"][0]["text"] == "x:v2 promoted"
    matrix = charts.figure([], xaxis={"title": "months since signup"})
    assert charts.with_releases(matrix, marker) is matrix


@pytest.mark.parametrize("page", ["/analytics/overview/", "/analytics/"])
def test_analytics_pages_draw_the_rollouts_of_their_range(
    history, analytics_store, client, pm, page
):
    """The overview page and the default dashboard (its tiles) alike."""
    from analytics.product.tests.product_data import load, rows_from_spec

    load(rows_from_spec([("u1", "signup", 0, {}), ("u1", "session_start", 3, {})], start=T))
    client.force_login(pm)
    body = client.get(f"{page}?date_from=2024-02-01&date_to=2024-02-29&period=day")
    assert body.status_code == 200
    found = re.search(
        r'<script id="analytics-charts" type="application/json">(.*?)</script>',
        body.content.decode(),
        re.S,
    )
    figure = json.loads(found.group(1))[0]["figure"]
    labels = [a["text"] for a in figure["layout"]["annotations"]]
    assert "api-gateway:v2 promoted" in labels and "api-gateway:v3-fault rolled_back" in labels
    assert not any("v5" in label for label in labels)
