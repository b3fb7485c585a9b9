"""The shared page base of the product analyses: an `Analysis` (input, compute, presenter)
rendered with its filter form, chart and table context, and the one CSV export.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

import charts
from analytics.product.common import (
    BREAKDOWN_COLUMNS,
    COHORT_PREFIX,
    PROPERTY_PREFIX,
    InCohortInput,
    Period,
)
from analytics.store.base import QueryTimeout, StoreError
from core.errors import InvalidRequest
from core.roles import Role, has_role, role_required

EXPORT_LIMIT = 100_000
NO_VALUE = "\u2013"  # an en dash for a missing figure


@dataclass
class Table:
    """The rows behind a chart, shown on the page and downloadable as CSV."""

    name: str
    title: str
    columns: list[tuple[str, str]]  # (key, label)
    rows: list[dict]
    links: dict = field(default_factory=dict)  # column key -> function(row) -> url
    percent: tuple = ()  # column keys holding ratios, shown as percentages

    def csv_response(self, filename: str) -> HttpResponse:
        return csv_response(f"{filename}-{self.name}", self.columns, self.rows)

    def display_rows(self) -> list[list[dict]]:
        return [
            [
                {
                    "value": percent(row.get(key))
                    if key in self.percent
                    else display(row.get(key)),
                    "num": isinstance(row.get(key), int | float),
                    "url": self.links[key](row) if key in self.links else None,
                }
                for key, _label in self.columns
            ]
            for row in self.rows
        ]


def csv_response(filename: str, columns: list[tuple[str, str]], rows: list[dict]) -> HttpResponse:
    """The one CSV download of the analytics pages: a header of the column labels, then each
    row's values by column key (a missing value as an empty cell)."""
    response = HttpResponse(content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    writer = csv.writer(response)
    writer.writerow([label for _key, label in columns])
    for row in rows:
        writer.writerow([_csv_cell(row.get(key)) for key, _label in columns])
    return response


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value):
    """Text a spreadsheet would run as a formula (client-supplied user ids, event properties)
    is prefixed with an apostrophe, OWASP's CSV-injection escape; numbers stay numbers."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def display(value):
    if value is None:
        return NO_VALUE
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return value


def percent(value) -> str:
    return NO_VALUE if value is None else f"{value * 100:.1f}%"


def query_string(request, **changes) -> str:
    params = request.GET.copy()
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    return params.urlencode()


@dataclass
class Analysis:
    """What a page view hands to `render_analysis`: how to compute and how to present the result."""

    name: str
    title: str
    input_class: type
    compute: Callable  # (validated serializer) -> result dict
    present: Callable  # (request, result, data) -> dict with panels, tables, stats, empty
    template: str = "analytics/analysis.html"
    extra_fields: list = field(default_factory=list)


def _cohort_options() -> list[str]:
    from analytics.cohorts.selectors import cohort_choices

    return [f"{COHORT_PREFIX}{pk}" for pk, _name in cohort_choices()]


def render_analysis(request, analysis: Analysis):
    # the page's own defaults (e.g. a demo funnel) for parameters the URL leaves out
    params = {f["name"]: f["default"] for f in analysis.extra_fields if f.get("default")}
    params.update(request.GET.dict())
    data = analysis.input_class(data=params)
    context = {
        "analysis": analysis,
        "active": analysis.name,
        "fields": analysis_fields(analysis, request),
        "errors": None,
        "error_message": None,
        "charts": [],
        "tables": [],
        "stats": [],
        "empty": False,
        "breakdown_options": [*BREAKDOWN_COLUMNS, PROPERTY_PREFIX + "platform", *_cohort_options()],
    }
    if not data.is_valid():
        context["errors"] = data.errors
        return render(request, analysis.template, context, status=400)
    for f in context["fields"]:  # show the range the defaults chose, not blank date inputs
        if f["type"] == "date" and not f["value"]:
            f["value"] = data.validated_data[f["name"]].isoformat()
    try:
        result = analysis.compute(data)
    except QueryTimeout as exc:
        context["error_message"] = (
            f"The query took too long ({exc}). Narrow the date range, choose a coarser period, "
            "or try again in a moment."
        )
        return render(request, analysis.template, context, status=503)
    except StoreError as exc:
        context["error_message"] = f"The analytics store could not answer: {exc}"
        return render(request, analysis.template, context, status=503)
    presented = analysis.present(request, result, data)
    wanted = request.GET.get("csv")
    if wanted:
        for table in presented.get("tables", []):
            if table.name == wanted:
                return table.csv_response(analysis.name)
    context.update(presented)
    from analytics.dashboards.views import pin_context  # dashboards import the analyses

    context["pin"] = pin_context(request, analysis)
    context["charts"] = with_releases(context["charts"], data.validated_data)
    context["csv_base"] = query_string(request, csv=None)
    return render(request, analysis.template, context)


def with_releases(chart_list: list[dict], params: dict) -> list[dict]:
    """Rollouts in the analysed range (UTC days) as markers on every time-series chart (an
    analysis page's and a dashboard tile's)."""
    from core.releases import markers as release_markers

    if "date_from" not in params or not chart_list:
        return chart_list
    start = dt.datetime.combine(params["date_from"], dt.time.min, tzinfo=dt.UTC)
    end = dt.datetime.combine(params["date_to"] + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
    markers = release_markers(start=start, end=end)
    return [
        {**chart, "figure": charts.with_releases(chart["figure"], markers)}
        if "figure" in chart
        else chart
        for chart in chart_list
    ]


def analysis_fields(analysis: Analysis, request) -> list[dict]:
    """The filter form: shared range/period/breakdown fields, then the analysis' own."""
    g = request.GET
    fields = [
        {"name": "date_from", "label": "From", "type": "date", "value": g.get("date_from", "")},
        {"name": "date_to", "label": "To", "type": "date", "value": g.get("date_to", "")},
    ]
    if "period" in analysis.input_class().fields:  # an analysis may have none (paths)
        fields.append(
            {
                "name": "period",
                "label": "Period",
                "type": "select",
                "value": g.get("period", analysis.input_class.default_period.value),
                "choices": [p.value for p in Period],
            }
        )
    if analysis.input_class.breakdowns:
        fields.append(
            {
                "name": "breakdown",
                "label": "Breakdown",
                "type": "breakdown",
                "value": g.get("breakdown", ""),
            }
        )
    if issubclass(analysis.input_class, InCohortInput):
        from analytics.cohorts.selectors import cohort_choices

        fields.append(
            {
                "name": "in_cohort",
                "label": "Users",
                "type": "cohort",
                "value": g.get("in_cohort", ""),
                "choices": [(str(pk), name) for pk, name in cohort_choices()],
            }
        )
    for spec in analysis.extra_fields:
        fields.append({**spec, "value": g.get(spec["name"], spec.get("default", ""))})
    return fields


def select_field(name, label, choices, default):
    return {"name": name, "label": label, "type": "select", "choices": choices, "default": default}


def text_field(name, label, default="", *, size=12, kind="text"):
    return {"name": name, "label": label, "type": kind, "default": default, "size": size}


def trend_text(value) -> str:
    if value is None:
        return "trend: needs 2+ cohorts"
    arrow = "▲" if value > 0 else "▼" if value < 0 else "="
    return f"trend {arrow} {value * 100:+.2f} pts per cohort"


def duration_text(seconds) -> str | None:
    if seconds is None:
        return None
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def period_name(period: str, start: str) -> tuple[str, bool]:
    """A period's name for a sentence ("Dec 2026", "the week of 2026-11-30", "2026-12-01") and
    whether it is still running (today falls in it)."""
    p = Period(period)
    first = dt.date.fromisoformat(start)
    today = dt.datetime.now(dt.UTC).date()
    running = first <= today <= p.last_day(first)
    if p is Period.MONTH:
        return first.strftime("%b %Y"), running
    if p is Period.WEEK:
        return f"the week of {start}", running
    return start, running


def partial_note(result) -> str:
    """A chart note when the range starts or ends inside a period: that period's counts cover
    only part of it (a dip that is not real)."""
    p = Period(result["period"])
    parts = []
    date_from = dt.date.fromisoformat(result["date_from"])
    if p.start_of(date_from) < date_from:
        parts.append(f"the first {p.value} starts only at {result['date_from']}")
    date_to = dt.date.fromisoformat(result["date_to"])
    if date_to >= dt.datetime.now(dt.UTC).date():  # today is in it: it has not ended
        parts.append(f"the last {p.value} is still running")
    elif p.last_day(p.start_of(date_to)) > date_to:
        parts.append(f"the last {p.value} is cut at {result['date_to']}")
    if not parts:
        return ""
    text = " and ".join(parts)
    cover = (
        "its counts cover only part of it"
        if len(parts) == 1
        else f"both cover only part of a {p.value}"
    )
    return f"{text[0].upper()}{text[1:]}: {cover}."


def users_table(name, title, result, request) -> tuple[Table, dict]:
    table = Table(name, title, [("user_id", "User")], [{"user_id": u} for u in result["users"]])
    page = int(request.GET.get("page") or 1)
    size = int(request.GET.get("page_size") or 100)
    pages = max(1, -(-result["total"] // size))
    pager = {
        "page": page,
        "pages": pages,
        "total": result["total"],
        "prev": query_string(request, page=page - 1, csv=None) if page > 1 else None,
        "next": query_string(request, page=page + 1, csv=None) if page < pages else None,
    }
    return table, pager


def users_panel(request, result, *, title: str, stat: str, back: str, own: tuple = ()) -> dict:
    """What a users page presents: one page of `result`'s users with its pager, their count
    (labelled `stat`) and a link back to the `back` page without this page's `own` params."""
    table, pager = users_table("users", title, result, request)
    cleared = dict.fromkeys((*own, "page", "page_size", "csv"))
    return {
        "tables": [table],
        "pager": pager,
        "empty": not result["total"],
        "back": reverse(back) + "?" + query_string(request, **cleared),
        "stats": [(stat, f"{result['total']:,}", title)],
    }


def users_page(request, analysis: Analysis):
    """An analysis page listing users; `?csv=users` downloads all of them, not one page, and a
    POST with a `cohort_name` saves all of them as a static cohort."""
    if request.method == "POST":
        return _save_as_cohort(request, analysis)
    if request.GET.get("csv") == "users":  # the whole list, not one page
        params = request.GET.copy()
        params["page"], params["page_size"] = "1", "1000"
        data = analysis.input_class(data=params)
        if data.is_valid():
            try:
                result = analysis.compute(data, export_limit=EXPORT_LIMIT)
            except QueryTimeout:
                result = None
            if result is not None:
                table = Table(
                    "users",
                    "users",
                    [("user_id", "User")],
                    [{"user_id": u} for u in result["users"]],
                )
                return table.csv_response(analysis.name)
    return render_analysis(request, analysis)


def _save_as_cohort(request, analysis: Analysis):
    from analytics.cohorts.services import static_cohort_create, user_ids_from_list

    if not has_role(request.user, Role.PRODUCT, Role.ADMIN):
        raise PermissionDenied("needs the role product or admin")
    params = request.GET.copy()
    params["page"], params["page_size"] = "1", "1000"
    data = analysis.input_class(data=params)
    name = request.POST.get("cohort_name", "").strip()[:100]
    try:
        if not data.is_valid():
            raise InvalidRequest(next(iter(data.errors)), "the list's parameters are invalid")
        if not name:
            raise InvalidRequest("cohort_name", "name the cohort")
        result = analysis.compute(data, export_limit=EXPORT_LIMIT)
        cohort = static_cohort_create(
            name=name,
            users=user_ids_from_list(result["users"]),
            source=f"{analysis.title} ({request.get_full_path()[:300]})",
            by=request.user,
        )
    except (InvalidRequest, StoreError) as exc:
        messages.error(request, f"Not saved: {exc}")
        return redirect(request.get_full_path())
    messages.success(request, f"Saved {cohort.size:,} users as the cohort {cohort.name!r}.")
    return redirect("analytics:cohort", pk=cohort.pk)


def analysis_view(analysis: Analysis, *, users: bool = False):
    def view(request):
        if users:
            return users_page(request, analysis)
        return render_analysis(request, analysis)

    view.__name__ = analysis.name + ("_users" if users else "")
    return role_required()(view)
