"""Dashboards: pinning checks parameters, the range override reaches every tile, a refresh
recomputes past the cache (numbers held to the pandas trend reference), tiles reorder."""

import datetime as dt

import pandas as pd
import pytest

from analytics.dashboards import services
from analytics.dashboards.models import Dashboard
from analytics.dashboards.selectors import dashboard_results, tile_params
from analytics.product.tests import reference
from analytics.product.tests.product_data import _wire, load, rows_from_spec
from analytics.store import store
from analytics.store.base import rows_to_json_each_row
from core.errors import DomainError, InvalidRequest
from core.models import AuditEntry

pytestmark = pytest.mark.django_db
START = dt.datetime(2024, 1, 1, 9, tzinfo=dt.UTC)
SPEC = [
    ("u1", "signup", 0, {}),
    ("u2", "signup", 3, {}),
    ("u1", "video_rendered", 1, {"video_style": "anime"}),
    ("u2", "video_rendered", 8, {"video_style": "comic"}),
    ("u3", "video_rendered", 9, {"video_style": "anime"}),
    ("u1", "video_rendered", 15, {"video_style": "anime"}),
]


def _reference(frame, *, series, date_from, date_to, period="week", math="total"):
    return reference.trend(
        frame,
        series=series,
        date_from=date_from,
        date_to=date_to,
        period=period,
        math=math,
    )


def _points(result):
    return [
        {"event": s["event"], "breakdown_value": s["breakdown_value"], "points": s["points"]}
        for s in result["series"]
        if s.get("compare", "current") == "current"
    ]


def test_pin_keeps_only_the_analysis_fields_and_names_a_bad_one(pm):
    board = services.dashboard_create(name="Growth", by=pm)
    tile = services.tile_add(
        dashboard=board,
        analysis="trends",
        params={"series": "signup", "period": "week", "csv": "series", "junk": "x", "math": ""},
        by=pm,
    )
    assert tile.params == {"series": "signup", "period": "week"}
    with pytest.raises(InvalidRequest) as err:
        services.tile_add(
            dashboard=board, analysis="trends", params={"series": "a", "math": "nope"}, by=pm
        )
    assert err.value.field == "params.math"
    with pytest.raises(InvalidRequest) as err:
        services.tile_add(dashboard=board, analysis="nope", params={}, by=pm)
    assert err.value.field == "analysis"
    assert AuditEntry.objects.filter(action="dashboard.pin").count() == 1


def test_the_range_override_reaches_every_tile_and_a_page_range_wins(pm):
    board = services.dashboard_create(name="B", by=pm, last_days=7)
    tile = services.tile_add(
        dashboard=board,
        analysis="retention",
        params={"date_from": "2024-01-01", "date_to": "2024-03-31", "period": "month"},
        by=pm,
    )
    today = dt.datetime.now(dt.UTC).date()
    got = tile_params(tile, board)
    assert got["date_to"] == today.isoformat()
    assert got["date_from"] == (today - dt.timedelta(days=6)).isoformat()
    assert got["period"] == "month"
    board = services.dashboard_update(
        dashboard=board, date_from=dt.date(2024, 2, 1), date_to=dt.date(2024, 2, 29), by=pm
    )
    assert board.last_days is None
    assert tile_params(tile, board)["date_from"] == "2024-02-01"
    page = (dt.date(2023, 1, 1), dt.date(2023, 1, 31))
    assert tile_params(tile, board, page)["date_to"] == "2023-01-31"
    board = services.dashboard_update(
        dashboard=board, last_days=None, date_from=None, date_to=None, by=pm
    )
    assert tile_params(tile, board)["date_from"] == "2024-01-01"
    with pytest.raises(InvalidRequest) as err:
        services.dashboard_update(
            dashboard=board, date_from=dt.date(2024, 3, 1), date_to=dt.date(2024, 2, 1), by=pm
        )
    assert err.value.field == "date_from"


def test_refresh_recomputes_every_tile_past_the_cache(analytics_store, pm):
    frame = load(rows_from_spec(SPEC, start=START))
    board = services.dashboard_create(
        name="B", by=pm, date_from=dt.date(2024, 1, 1), date_to=dt.date(2024, 1, 31)
    )
    services.tile_add(
        dashboard=board, analysis="trends", params={"series": "video_rendered"}, by=pm
    )
    services.tile_add(
        dashboard=board,
        analysis="trends",
        params={"series": "signup,video_rendered", "math": "unique_users", "period": "week"},
        by=pm,
    )
    window = {"date_from": dt.date(2024, 1, 1), "date_to": dt.date(2024, 1, 31)}
    first = dashboard_results(board)
    assert [r.status for r in first] == ["ok", "ok"]
    # the first tile keeps its own period (day) but takes the dashboard's range
    assert _points(first[0].result) == _reference(
        frame, series=["video_rendered"], period="day", **window
    )
    # more events arrive; the cached tiles do not see them until a refresh
    extra = rows_from_spec([("u4", "video_rendered", 2, {}), ("u5", "signup", 2, {})], start=START)
    for i, row in enumerate(extra):
        row["uuid"] = f"10000000-0000-0000-0000-{i:012d}"
    store().insert_json_each_row("events", rows_to_json_each_row(_wire(extra)))
    assert dashboard_results(board)[1].result == first[1].result
    services.dashboard_refresh_request(dashboard=board, by=pm)  # queued; the task runs it
    board = services.dashboard_refresh(dashboard_id=board.pk)
    assert (board.refresh_state, board.refresh_done, board.refresh_total) == ("done", 2, 2)
    added = pd.DataFrame(extra, columns=frame.columns)
    added["timestamp"] = pd.to_datetime(added["timestamp"], utc=True)
    both = pd.concat([frame, added], ignore_index=True)
    after = dashboard_results(board)
    assert _points(after[1].result) == _reference(
        both, series=["signup", "video_rendered"], math="unique_users", **window
    )
    assert after[1].result != first[1].result
    assert all(t.refreshed_at and not t.error for t in board.tiles.all())


def test_a_failing_tile_is_reported_and_the_others_refresh(analytics_store, pm):
    load(rows_from_spec(SPEC, start=START))
    board = services.dashboard_create(name="B", by=pm)
    good = services.tile_add(dashboard=board, analysis="lifecycle", params={}, by=pm)
    bad = services.tile_add(dashboard=board, analysis="trends", params={"series": "x"}, by=pm)
    bad.params = {"series": "x", "math": "gone"}  # stored before an input changed
    bad.save()
    board = services.dashboard_refresh(dashboard_id=board.pk)
    assert (board.refresh_state, board.refresh_done, board.refresh_failed) == ("failed", 2, 1)
    bad.refresh_from_db()
    good.refresh_from_db()
    assert bad.error.startswith("math:") and good.error == ""
    results = {r.tile.pk: r for r in dashboard_results(board)}
    assert results[bad.pk].status == "invalid" and "math" in results[bad.pk].error
    assert results[good.pk].status == "ok"


def test_reorder_move_and_remove(pm):
    board = services.dashboard_create(name="B", by=pm)
    tiles = [
        services.tile_add(dashboard=board, analysis=name, params={}, by=pm)
        for name in ("revenue", "lifecycle", "stickiness")
    ]
    a, b, c = (t.pk for t in tiles)
    services.tiles_reorder(dashboard=board, order=[c, a, b], by=pm)
    assert list(board.tiles.values_list("pk", flat=True)) == [c, a, b]
    with pytest.raises(InvalidRequest) as err:
        services.tiles_reorder(dashboard=board, order=[c, a], by=pm)
    assert err.value.field == "tiles"
    services.tile_move(tile=board.tiles.get(pk=b), offset=-1, by=pm)
    assert list(board.tiles.values_list("pk", flat=True)) == [c, b, a]
    services.tile_remove(tile=board.tiles.get(pk=c), by=pm)
    assert list(board.tiles.values_list("pk", "position")) == [(b, 0), (a, 1)]


def test_the_default_dashboard_is_the_overview_and_cannot_be_deleted(pm):
    default = services.dashboard_default()
    assert default.is_default and default.name == "Overview"
    assert [t.analysis for t in default.tiles.all()] == [a for a, _, _ in services.DEFAULT_TILES]
    assert services.dashboard_default().pk == default.pk
    with pytest.raises(DomainError):
        services.dashboard_delete(dashboard=default, by=pm)
    other = services.dashboard_create(name="Mine", by=pm, is_default=True)
    assert list(Dashboard.objects.filter(is_default=True)) == [other]
    services.dashboard_delete(dashboard=default, by=pm)
    assert services.dashboard_default().pk == other.pk
