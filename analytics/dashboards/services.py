"""Every change to dashboards and tiles, and the refresh that recomputes all tiles at once.

Tiles are validated when pinned by the analysis' own input (the same 400 naming the field as
its API, here as `params.<field>`) and again on every run (analytics/product/registry.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone
from rest_framework import serializers

from analytics.dashboards.models import Dashboard, Tile
from core.errors import DomainError, InvalidRequest, StateConflict, Unprocessable
from core.services import actor_label, audit_record

MAX_TILES = 40
MAX_PARAM_VALUES = 20
# query-string keys of a page that are not part of an analysis (exports, paging)
_PAGE_ONLY = {"csv", "page", "page_size"}

DEFAULT_NAME = "Overview"
# the overview page's content as the default dashboard: its stats and activity chart, then the
# analyses it links to that a PM checks first
DEFAULT_TILES = [
    ("overview", {}, "Active users, signups and conversion"),
    ("trends", {"series": "video_rendered", "math": "unique_users", "period": "week"}, ""),
    ("retention", {"period": "month"}, "Monthly retention"),
    ("revenue", {"period": "month"}, "Revenue"),
]


class DashboardStateError(DomainError):
    pass


def _spec(name: str):
    from analytics.product.registry import analysis_spec

    return analysis_spec(name)


def tile_params_clean(*, analysis: str, params: Mapping[str, Any]) -> dict:
    """The analysis' parameters as stored: only its own fields, strings (lists for repeated
    ones), checked by its input now."""
    from analytics.product.registry import analysis_input

    spec = _spec(analysis)
    fields = spec.input_class().fields
    if not isinstance(params, Mapping):
        raise InvalidRequest("params", "an object of the analysis' query-string parameters")
    clean: dict[str, Any] = {}
    for key, value in params.items():
        if key in _PAGE_ONLY or key not in fields:
            continue
        if isinstance(value, list | tuple):
            values = [str(v) for v in value if v not in (None, "")]
            if len(values) > MAX_PARAM_VALUES:
                raise InvalidRequest(f"params.{key}", f"at most {MAX_PARAM_VALUES} values")
            if values:
                clean[key] = values if len(values) > 1 else values[0]
        elif value not in (None, ""):
            if not isinstance(value, str | int | float | bool):
                raise InvalidRequest(f"params.{key}", "a string, number or list of them")
            clean[key] = str(value)
    try:
        analysis_input(name=analysis, params=clean)
    except serializers.ValidationError as exc:
        field, problems = _first_error(exc.detail)
        # the analysis' own parameters are an object in the schema: their rules answer 422
        raise Unprocessable(f"params.{field}", problems) from exc
    return clean


def _first_error(detail) -> tuple[str, str]:
    if isinstance(detail, dict) and detail:
        field, problems = next(iter(detail.items()))
        if field == "non_field_errors":
            field = "params"
        text = "; ".join(str(p) for p in problems) if isinstance(problems, list) else str(problems)
        return str(field), text
    return "params", "; ".join(str(p) for p in detail) if isinstance(detail, list) else str(detail)


def _range_fields(
    *, last_days: int | None, date_from: dt.date | None, date_to: dt.date | None
) -> dict:
    probe = Dashboard(last_days=last_days, date_from=date_from, date_to=date_to)
    try:
        probe.clean()
    except ValidationError as exc:
        field, problems = next(iter(exc.message_dict.items()))
        # the range's rules (both dates or neither, in order) are not in the schema: 422
        raise Unprocessable(field, "; ".join(problems)) from exc
    return {"last_days": last_days, "date_from": date_from, "date_to": date_to}


@transaction.atomic
def dashboard_create(
    *,
    name: str,
    by,
    description: str = "",
    last_days: int | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    is_default: bool = False,
) -> Dashboard:
    name = name.strip()
    if not name:
        raise InvalidRequest("name", "1-100 characters")
    if Dashboard.objects.filter(name=name).exists():
        raise StateConflict("name", f"a dashboard named {name!r} exists")
    dashboard = Dashboard.objects.create(
        name=name,
        description=description,
        created_by=actor_label(by)[:200] if by else "",
        **_range_fields(last_days=last_days, date_from=date_from, date_to=date_to),
    )
    if is_default:
        dashboard = dashboard_make_default(dashboard=dashboard, by=by)
    audit_record(actor=by, action="dashboard.create", target=dashboard, detail=name)
    return dashboard


_UNSET = object()


@transaction.atomic
def dashboard_update(
    *,
    dashboard: Dashboard,
    by,
    name: str | None = None,
    description: str | None = None,
    last_days=_UNSET,
    date_from=_UNSET,
    date_to=_UNSET,
    is_default: bool | None = None,
) -> Dashboard:
    """Rename, describe, set or clear the date-range override (last_days, or date_from and
    date_to; giving one kind clears the other), or make it the default."""
    dashboard = Dashboard.objects.select_for_update().get(pk=dashboard.pk)
    changed = []
    if name is not None and name.strip() != dashboard.name:
        name = name.strip()
        if not name:
            raise InvalidRequest("name", "1-100 characters")
        if Dashboard.objects.filter(name=name).exclude(pk=dashboard.pk).exists():
            raise StateConflict("name", f"a dashboard named {name!r} exists")
        dashboard.name = name
        changed.append("name")
    if description is not None:
        dashboard.description = description
        changed.append("description")
    if any(v is not _UNSET for v in (last_days, date_from, date_to)):
        if last_days is not _UNSET and last_days is not None:
            date_from = date_to = None
        elif date_from is not _UNSET or date_to is not _UNSET:
            last_days = None
        fields = _range_fields(
            last_days=dashboard.last_days if last_days is _UNSET else last_days,
            date_from=dashboard.date_from if date_from is _UNSET else date_from,
            date_to=dashboard.date_to if date_to is _UNSET else date_to,
        )
        for key, value in fields.items():
            setattr(dashboard, key, value)
        changed.append("range")
    if is_default is False and dashboard.is_default:
        # the dashboard's state decides, not the request's shape: 409, and nothing is changed
        raise StateConflict("is_default", "make another dashboard the default instead")
    dashboard.save()
    if is_default and not dashboard.is_default:
        dashboard = dashboard_make_default(dashboard=dashboard, by=by)
        changed.append("default")
    audit_record(actor=by, action="dashboard.change", target=dashboard, detail=", ".join(changed))
    return dashboard


@transaction.atomic
def dashboard_make_default(*, dashboard: Dashboard, by) -> Dashboard:
    Dashboard.objects.filter(is_default=True).exclude(pk=dashboard.pk).update(is_default=False)
    Dashboard.objects.filter(pk=dashboard.pk).update(is_default=True)
    dashboard.refresh_from_db()
    audit_record(actor=by, action="dashboard.default", target=dashboard)
    return dashboard


@transaction.atomic
def dashboard_delete(*, dashboard: Dashboard, by) -> None:
    dashboard = Dashboard.objects.select_for_update().get(pk=dashboard.pk)
    if dashboard.is_default:
        raise DashboardStateError("the default dashboard cannot be deleted; make another default")
    audit_record(actor=by, action="dashboard.delete", target=dashboard, detail=dashboard.name)
    dashboard.delete()


def dashboard_default() -> Dashboard:
    """The dashboard the analytics area opens on; the first time, the overview's content."""
    dashboard = Dashboard.objects.filter(is_default=True).first()
    if dashboard is not None:
        return dashboard
    try:
        with transaction.atomic():
            dashboard = Dashboard.objects.create(
                name=_free_name(DEFAULT_NAME),
                description="The product overview: the dashboard the analytics area opens on.",
                is_default=True,
                created_by="system",
            )
            for position, (analysis, params, title) in enumerate(DEFAULT_TILES):
                Tile.objects.create(
                    dashboard=dashboard,
                    analysis=analysis,
                    params=params,
                    title=title,
                    position=position,
                )
    except IntegrityError:  # another request made it first
        return Dashboard.objects.get(is_default=True)
    return dashboard


def _free_name(name: str) -> str:
    taken = set(Dashboard.objects.filter(name__startswith=name).values_list("name", flat=True))
    if name not in taken:
        return name
    return next(f"{name} {i}" for i in range(2, len(taken) + 3) if f"{name} {i}" not in taken)


@transaction.atomic
def tile_add(
    *, dashboard: Dashboard, analysis: str, params: Mapping[str, Any], by, title: str = ""
) -> Tile:
    """Pin `analysis` with `params` at the end of `dashboard`."""
    dashboard = Dashboard.objects.select_for_update().get(pk=dashboard.pk)
    clean = tile_params_clean(analysis=analysis, params=params)
    if dashboard.tiles.count() >= MAX_TILES:
        raise InvalidRequest("analysis", f"a dashboard holds at most {MAX_TILES} tiles")
    last = dashboard.tiles.aggregate(last=Max("position"))["last"]
    tile = Tile.objects.create(
        dashboard=dashboard,
        analysis=analysis,
        params=clean,
        title=title.strip()[:200],
        position=0 if last is None else last + 1,
    )
    audit_record(
        actor=by, action="dashboard.pin", target=dashboard, detail=f"{analysis} {clean}"[:500]
    )
    return tile


@transaction.atomic
def tile_update(
    *, tile: Tile, by, title: str | None = None, params: Mapping[str, Any] | None = None
) -> Tile:
    if title is not None:
        tile.title = title.strip()[:200]
    if params is not None:
        tile.params = tile_params_clean(analysis=tile.analysis, params=params)
        tile.error = ""
    tile.save()
    audit_record(actor=by, action="dashboard.tile_change", target=tile.dashboard, detail=str(tile))
    return tile


@transaction.atomic
def tile_remove(*, tile: Tile, by) -> None:
    audit_record(actor=by, action="dashboard.unpin", target=tile.dashboard, detail=str(tile))
    Tile.objects.filter(dashboard=tile.dashboard, position__gt=tile.position).update(
        position=F("position") - 1
    )
    tile.delete()


@transaction.atomic
def tiles_reorder(*, dashboard: Dashboard, order: list[int], by) -> list[Tile]:
    """Put the tiles in `order`, which must name every tile of the dashboard once."""
    dashboard = Dashboard.objects.select_for_update().get(pk=dashboard.pk)
    tiles = {t.pk: t for t in dashboard.tiles.all()}
    if sorted(order) != sorted(tiles):
        raise Unprocessable(
            "tiles", f"name every tile of the dashboard once: {sorted(tiles)} in the new order"
        )
    for position, pk in enumerate(order):
        tiles[pk].position = position
    Tile.objects.bulk_update(tiles.values(), ["position"])
    audit_record(actor=by, action="dashboard.reorder", target=dashboard, detail=str(order))
    return [tiles[pk] for pk in order]


@transaction.atomic
def tile_move(*, tile: Tile, by, offset: int) -> list[Tile]:
    """Move a tile `offset` places (negative: earlier), within the dashboard's bounds."""
    order = list(tile.dashboard.tiles.values_list("pk", flat=True))
    index = order.index(tile.pk)
    target = max(0, min(len(order) - 1, index + offset))
    order.insert(target, order.pop(index))
    return tiles_reorder(dashboard=tile.dashboard, order=order, by=by)


def dashboard_refresh_request(*, dashboard: Dashboard, by) -> Dashboard:
    """Queue one recomputation of every tile (a refresh already queued or running is kept)."""
    from analytics.dashboards.tasks import refresh_dashboard

    with transaction.atomic():
        dashboard = Dashboard.objects.select_for_update().get(pk=dashboard.pk)
        if dashboard.refreshing:
            return dashboard
        dashboard.refresh_state = Dashboard.Refresh.QUEUED
        dashboard.refresh_total = dashboard.tiles.count()
        dashboard.refresh_done = dashboard.refresh_failed = 0
        dashboard.refresh_started_at = timezone.now()
        dashboard.save()
        audit_record(actor=by, action="dashboard.refresh", target=dashboard)
        pk = dashboard.pk
        transaction.on_commit(lambda: refresh_dashboard.delay(pk))
    return dashboard


def dashboard_refresh(*, dashboard_id: int) -> Dashboard:
    """Recompute every tile past the cache, in order, saving progress after each one; a tile
    that fails keeps its error and the others go on."""
    from analytics.dashboards.selectors import tile_params
    from analytics.product.registry import analysis_result
    from analytics.store.base import QueryTimeout, StoreError, StoreUnavailable
    from analytics.store.cache import cache_refresh

    dashboard = Dashboard.objects.get(pk=dashboard_id)
    tiles = list(dashboard.tiles.all())
    Dashboard.objects.filter(pk=dashboard.pk).update(
        refresh_state=Dashboard.Refresh.RUNNING,
        refresh_total=len(tiles),
        refresh_done=0,
        refresh_failed=0,
        refresh_started_at=timezone.now(),
    )
    failed = 0
    for done, tile in enumerate(tiles, start=1):
        error = ""
        try:
            with cache_refresh():
                analysis_result(name=tile.analysis, params=tile_params(tile, dashboard))
        except QueryTimeout as exc:
            error = f"the query took too long ({exc})"
            failed += 1
        except StoreUnavailable:
            Dashboard.objects.filter(pk=dashboard.pk).update(refresh_state=Dashboard.Refresh.FAILED)
            raise  # the task retries the whole refresh
        except (serializers.ValidationError, InvalidRequest, StoreError) as exc:
            error = error_text(exc)
            failed += 1
        Tile.objects.filter(pk=tile.pk).update(refreshed_at=timezone.now(), error=error[:500])
        Dashboard.objects.filter(pk=dashboard.pk).update(refresh_done=done, refresh_failed=failed)
    Dashboard.objects.filter(pk=dashboard.pk).update(
        refresh_state=Dashboard.Refresh.FAILED if failed else Dashboard.Refresh.DONE,
        refreshed_at=timezone.now(),
    )
    dashboard.refresh_from_db()
    return dashboard


def error_text(exc: Exception) -> str:
    if isinstance(exc, InvalidRequest):
        return str(exc)
    if isinstance(exc, serializers.ValidationError):
        field, problems = _first_error(exc.detail)
        return f"{field}: {problems}"
    return str(exc) or type(exc).__name__
