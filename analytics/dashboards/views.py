"""Pages of dashboards: the default dashboard (the analytics area's landing page), the list
with the create form, one dashboard with its tiles, and the "Pin to dashboard" control that
every analysis page carries."""

from __future__ import annotations

import copy
import datetime as dt
import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from analytics.dashboards import services
from analytics.dashboards.models import Dashboard, Tile
from analytics.dashboards.selectors import TileResult, dashboard_results
from analytics.product.common import check_range
from core.errors import DomainError, InvalidRequest
from core.roles import Role, has_role, role_required

TILE_STATS = 6


def can_edit(request) -> bool:
    return has_role(request.user, Role.PRODUCT, Role.ADMIN)


def _require_edit(request) -> None:
    if not can_edit(request):
        raise PermissionDenied("needs the role product or admin")


@role_required()
def index(request):
    """The analytics area opens on the default dashboard."""
    return _render_dashboard(request, services.dashboard_default())


@role_required()
def dashboards_page(request):
    errors: dict[str, str] = {}
    form = {"name": "", "description": ""}
    if request.method == "POST":
        _require_edit(request)
        form = {k: request.POST.get(k, "").strip() for k in form}
        try:
            dashboard = services.dashboard_create(
                name=form["name"][:100], description=form["description"][:500], by=request.user
            )
        except InvalidRequest as exc:
            errors[exc.field] = exc.problem
        else:
            messages.success(request, f"Dashboard {dashboard.name!r} created.")
            return redirect("analytics:dashboard", pk=dashboard.pk)
    services.dashboard_default()  # the list always shows the overview
    dashboards = Dashboard.objects.all()
    context = {
        "dashboards": [(d, d.tiles.count()) for d in dashboards],
        "form": form,
        "errors": errors,
        "can_edit": can_edit(request),
        "active": "dashboards",
    }
    return render(request, "dashboards/index.html", context, status=400 if errors else 200)


@role_required()
def dashboard_page(request, pk: int):
    dashboard = get_object_or_404(Dashboard, pk=pk)
    if request.method == "POST":
        _require_edit(request)
        return _act(request, dashboard)
    return _render_dashboard(request, dashboard)


def _page_range(request) -> tuple[tuple[dt.date, dt.date] | None, dict]:
    """A range in the URL (?date_from=&date_to=) shows every tile for it without saving it."""
    errors: dict[str, list[str]] = {}
    raw = {k: request.GET.get(k, "").strip() for k in ("date_from", "date_to")}
    if not any(raw.values()):
        return None, errors
    values = {}
    for key, text in raw.items():
        try:
            values[key] = dt.date.fromisoformat(text)
        except ValueError:
            errors[key] = ["a date as YYYY-MM-DD"]
    if errors:
        return None, errors
    try:
        check_range(values["date_from"], values["date_to"])
    except InvalidRequest as exc:
        return None, {exc.field: [exc.problem]}
    return (values["date_from"], values["date_to"]), errors


def _render_dashboard(request, dashboard: Dashboard):
    override, errors = _page_range(request)
    results = [] if errors else dashboard_results(dashboard, override)
    tiles = [_present(request, r, i, len(results)) for i, r in enumerate(results)]
    charts = [chart for tile in tiles for chart in tile["charts"]]
    shown = override or dashboard.range_override()
    context = {
        "dashboard": dashboard,
        "dashboards": Dashboard.objects.only("pk", "name", "is_default"),
        "tiles": tiles,
        "charts": charts,
        "errors": errors,
        "range": shown,
        "range_source": "this page"
        if override
        else ("the dashboard" if dashboard.range_override() else None),
        "can_edit": can_edit(request),
        "active": "overview" if dashboard.is_default else "dashboards",
        "status_url": reverse("analytics-dashboard", args=[dashboard.pk]),
    }
    return render(request, "dashboards/detail.html", context, status=400 if errors else 200)


def _present(request, item: TileResult, index: int, count: int) -> dict:
    from analytics.product.pages import with_releases
    from analytics.product.registry import ANALYSES

    tile = item.tile
    spec = ANALYSES.get(tile.analysis)
    out = {
        "tile": tile,
        "title": tile.title or (spec.title if spec else tile.analysis),
        "kind": spec.title if spec else tile.analysis,
        "error": item.error,
        "stats": [],
        "charts": [],
        "open_url": spec.page_url(item.params) if spec else None,
        "csv_url": None,
        "first": index == 0,
        "last": index == count - 1,
    }
    if item.result is None or spec is None:
        return out
    data = spec.input_class(data=dict(item.params))
    data.is_valid()
    tile_request = copy.copy(request)
    tile_request.GET = _query_dict(item.params)
    presented = spec.analysis.present(tile_request, item.result, data)
    out["stats"] = presented.get("stats", [])[:TILE_STATS]
    out["empty"] = presented.get("empty", False)
    shown = [] if out["empty"] else presented.get("charts", [])[:1]
    for chart in with_releases(shown, data.validated_data if data.is_valid() else {}):
        if "figure" in chart:
            out["charts"].append({**chart, "id": f"tile-{tile.pk}-{chart['id']}"})
    tables = presented.get("tables", [])
    if tables:
        out["csv_url"] = out["open_url"] + "&csv=" + tables[0].name
    return out


def _query_dict(params: dict) -> QueryDict:
    query = QueryDict(mutable=True)
    for key, value in params.items():
        if isinstance(value, list):
            query.setlist(key, [str(v) for v in value])
        else:
            query[key] = str(value)
    return query


def _int(value: str, field: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidRequest(field, "a whole number") from None


def _date(value: str, field: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(field, "a date as YYYY-MM-DD") from None


def _act(request, dashboard: Dashboard):
    post = request.POST
    action = post.get("action", "")
    target = reverse("analytics:dashboard", args=[dashboard.pk])
    try:
        if action == "refresh":
            services.dashboard_refresh_request(dashboard=dashboard, by=request.user)
            messages.success(request, "Refreshing every tile.")
        elif action in ("up", "down", "remove", "rename"):
            tile = get_object_or_404(Tile, pk=_int(post.get("tile"), "tile"), dashboard=dashboard)
            if action == "remove":
                services.tile_remove(tile=tile, by=request.user)
                messages.success(request, f"Removed {tile}.")
            elif action == "rename":
                services.tile_update(tile=tile, title=post.get("title", ""), by=request.user)
            else:
                services.tile_move(tile=tile, offset=-1 if action == "up" else 1, by=request.user)
        elif action == "range":
            if post.get("last_days"):
                services.dashboard_update(
                    dashboard=dashboard,
                    last_days=_int(post["last_days"], "last_days"),
                    by=request.user,
                )
            elif post.get("date_from") or post.get("date_to"):
                services.dashboard_update(
                    dashboard=dashboard,
                    date_from=_date(post.get("date_from", ""), "date_from"),
                    date_to=_date(post.get("date_to", ""), "date_to"),
                    by=request.user,
                )
            else:
                services.dashboard_update(
                    dashboard=dashboard,
                    last_days=None,
                    date_from=None,
                    date_to=None,
                    by=request.user,
                )
            messages.success(request, "Date range saved for every tile.")
        elif action == "default":
            services.dashboard_make_default(dashboard=dashboard, by=request.user)
            messages.success(request, f"{dashboard.name!r} is now the analytics landing page.")
        elif action == "delete":
            services.dashboard_delete(dashboard=dashboard, by=request.user)
            messages.success(request, f"Dashboard {dashboard.name!r} deleted.")
            return redirect("analytics:dashboards")
        else:
            raise InvalidRequest("action", "unknown")
    except (InvalidRequest, DomainError) as exc:
        messages.error(request, str(exc))
    return redirect(target)


@role_required()
def pin(request):
    """POST from an analysis page: its name and current parameters, to a dashboard chosen or
    created by name."""
    if request.method != "POST":
        return redirect("analytics:dashboards")
    _require_edit(request)
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, {request.get_host()}, require_https=False):
        back = reverse("analytics:dashboards")
    try:
        params = json.loads(request.POST.get("params") or "{}")
        if not isinstance(params, dict):
            raise InvalidRequest("params", "an object")
        chosen = request.POST.get("dashboard", "")
        new_name = request.POST.get("new_dashboard", "").strip()[:100]
        if new_name:
            dashboard = services.dashboard_create(name=new_name, by=request.user)
        elif chosen:
            dashboard = get_object_or_404(Dashboard, pk=_int(chosen, "dashboard"))
        else:
            raise InvalidRequest("dashboard", "choose a dashboard or name a new one")
        services.tile_add(
            dashboard=dashboard,
            analysis=request.POST.get("analysis", ""),
            params=params,
            title=request.POST.get("title", ""),
            by=request.user,
        )
    except json.JSONDecodeError:
        messages.error(request, "Not pinned: params are not JSON.")
        return redirect(back)
    except InvalidRequest as exc:
        messages.error(request, f"Not pinned: {exc}")
        return redirect(back)
    link = reverse("analytics:dashboard", args=[dashboard.pk])
    messages.success(request, f"Pinned to {dashboard.name!r}.")
    return redirect(link)


def pin_context(request, analysis) -> dict | None:
    """What the analysis page's "Pin to dashboard" control needs, for editors on the pages
    of registry analyses (not the drill-down user lists)."""
    from analytics.product.registry import ANALYSES

    spec = ANALYSES.get(analysis.name)
    if spec is None or spec.analysis is not analysis or not can_edit(request):
        return None
    params = {}
    for key, values in request.GET.lists():
        if key in ("csv", "page", "page_size"):
            continue
        values = [v for v in values if v]
        if values:
            params[key] = values if len(values) > 1 else values[0]
    return {
        "analysis": spec.name,
        "params": json.dumps(params),
        "dashboards": list(Dashboard.objects.values_list("pk", "name")),
        "next": request.get_full_path(),
    }
