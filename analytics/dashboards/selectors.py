"""Reads of dashboards: each tile's effective parameters (the dashboard's date range over the
tile's own) and results from the analytics cache (computed and cached on a miss, as the
analysis' own page does)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from rest_framework import serializers

from analytics.dashboards.models import Dashboard, Tile
from analytics.store.base import QueryTimeout, StoreError
from core.errors import InvalidRequest

Range = tuple[dt.date, dt.date]


def tile_params(tile: Tile, dashboard: Dashboard, override: Range | None = None) -> dict:
    """The parameters a tile runs with: `override` (a page's own range), else the dashboard's
    date-range override, else the tile's own."""
    params = dict(tile.params)
    chosen = override or dashboard.range_override()
    if chosen:
        params["date_from"], params["date_to"] = chosen[0].isoformat(), chosen[1].isoformat()
    return params


@dataclass
class TileResult:
    tile: Tile
    params: dict
    result: dict | None = None
    error: str = ""
    status: str = "ok"  # ok | invalid | timeout | unavailable


def tile_result(tile: Tile, dashboard: Dashboard, override: Range | None = None) -> TileResult:
    from analytics.dashboards.services import error_text
    from analytics.product.registry import analysis_result

    params = tile_params(tile, dashboard, override)
    out = TileResult(tile, params)
    try:
        out.result = analysis_result(name=tile.analysis, params=params)
    except (serializers.ValidationError, InvalidRequest) as exc:  # e.g. a deleted cohort
        out.status, out.error = "invalid", error_text(exc)
    except QueryTimeout as exc:
        out.status, out.error = "timeout", f"the query took too long ({exc}); refresh later"
    except StoreError as exc:
        out.status, out.error = "unavailable", f"the analytics store could not answer: {exc}"
    return out


def dashboard_results(dashboard: Dashboard, override: Range | None = None) -> list[TileResult]:
    return [tile_result(tile, dashboard, override) for tile in dashboard.tiles.all()]
