"""Pages of the product analyses: the same query strings as the APIs, plotly figures built
here from the selectors' results, and a CSV download of the table behind each chart."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse

from analytics import api_product as api
from analytics.queries.common import BREAKDOWN_COLUMNS, PROPERTY_PREFIX, Period
from analytics.queries.funnels import Order
from analytics.queries.retention import CohortType, Mode
from analytics.queries.usage import Dimension
from analytics.store.base import QueryTimeout, StoreError
from core.roles import role_required

EXPORT_LIMIT = 100_000
NO_VALUE = "\u2013"  # an en dash for a missing figure
COLORS = ["#4f46e5", "#16a34a", "#d97706", "#dc2626", "#0891b2", "#9333ea", "#64748b", "#db2777"]
# a year of monthly cohorts, each its own colour
CURVE_COLORS = [*COLORS, "#65a30d", "#0d9488", "#c2410c", "#7c3aed", "#be123c"]


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
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{filename}-{self.name}.csv"'
        writer = csv.writer(response)
        writer.writerow([label for _key, label in self.columns])
        for row in self.rows:
            writer.writerow([_csv_cell(row.get(key)) for key, _label in self.columns])
        return response

    def display_rows(self) -> list[list[dict]]:
        return [
            [
                {
                    "value": _pct(row.get(key)) if key in self.percent else _display(row.get(key)),
                    "num": isinstance(row.get(key), int | float),
                    "url": self.links[key](row) if key in self.links else None,
                }
                for key, _label in self.columns
            ]
            for row in self.rows
        ]


def _csv_cell(value):
    return "" if value is None else value


def _display(value):
    if value is None:
        return NO_VALUE
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return value


def _pct(value) -> str:
    return NO_VALUE if value is None else f"{value * 100:.1f}%"


def _query_string(request, **changes) -> str:
    params = request.GET.copy()
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    return params.urlencode()


@dataclass
class Analysis:
    """What a page view hands to `_page`: how to compute and how to present the result."""

    name: str
    title: str
    input_class: type
    compute: Callable  # (validated serializer) -> result dict
    present: Callable  # (request, result, data) -> dict with charts, tables, stats, empty
    template: str = "analytics/analysis.html"
    extra_fields: list = field(default_factory=list)


def _page(request, analysis: Analysis):
    # the page's own defaults (e.g. a demo funnel) for parameters the URL leaves out
    params = {f["name"]: f["default"] for f in analysis.extra_fields if f.get("default")}
    params.update(request.GET.dict())
    data = analysis.input_class(data=params)
    context = {
        "analysis": analysis,
        "active": analysis.name,
        "fields": _fields(analysis, request),
        "errors": None,
        "error_message": None,
        "charts": [],
        "tables": [],
        "stats": [],
        "empty": False,
        "breakdown_options": [*BREAKDOWN_COLUMNS, PROPERTY_PREFIX + "platform"],
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
    context["csv_base"] = _query_string(request, csv=None)
    return render(request, analysis.template, context)


def _fields(analysis: Analysis, request) -> list[dict]:
    """The filter form: shared range/period/breakdown fields, then the analysis' own."""
    g = request.GET
    fields = [
        {"name": "date_from", "label": "From", "type": "date", "value": g.get("date_from", "")},
        {"name": "date_to", "label": "To", "type": "date", "value": g.get("date_to", "")},
        {
            "name": "period",
            "label": "Period",
            "type": "select",
            "value": g.get("period", analysis.input_class.default_period.value),
            "choices": [p.value for p in Period],
        },
    ]
    if analysis.input_class.breakdowns:
        fields.append(
            {
                "name": "breakdown",
                "label": "Breakdown",
                "type": "breakdown",
                "value": g.get("breakdown", ""),
            }
        )
    for spec in analysis.extra_fields:
        fields.append({**spec, "value": g.get(spec["name"], spec.get("default", ""))})
    return fields


def _select(name, label, choices, default):
    return {"name": name, "label": label, "type": "select", "choices": choices, "default": default}


def _text(name, label, default="", *, size=12, kind="text"):
    return {"name": name, "label": label, "type": kind, "default": default, "size": size}


# ---------------------------------------------------------------- overview


def _present_overview(request, r, data):
    series = r["series"]
    stats = [
        ("DAU", f"{r['dau']:,}", f"on {r['date_to']}"),
        ("WAU", f"{r['wau']:,}", "7 days to date_to"),
        ("MAU", f"{r['mau']:,}", "30 days to date_to"),
        ("New signups", f"{r['signups']:,}", "in the range"),
        ("Conversion to paid", _pct(r["conversion_to_paid"]), f"{r['converted']:,} users"),
    ]
    summary = r["retention_summary"]
    stats += [
        (f"Retention, month {k.removeprefix('period_')}", _pct(v["average"]), _trend(v["trend"]))
        for k, v in summary.items()
    ]
    periods = [s["period"] for s in series]
    chart = {
        "id": "overview-activity",
        "title": "Active users and new signups",
        "table": "activity",
        "note": _partial_note(r),
        "figure": {
            "data": [
                {
                    "type": "bar",
                    "name": "Active users",
                    "x": periods,
                    "y": [s["active_users"] for s in series],
                    "marker": {"color": COLORS[0]},
                },
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": "Signups",
                    "x": periods,
                    "y": [s["signups"] for s in series],
                    "yaxis": "y2",
                    "line": {"color": COLORS[2]},
                },
            ],
            "layout": {
                **_two_axes("active users", "signups"),
                "xaxis": _period_axis(r["period"], periods),
            },
        },
    }
    table = Table(
        "activity",
        "Activity by period",
        [
            ("period", "Period"),
            ("active_users", "Active users"),
            ("signups", "Signups"),
            ("converted", "Converted to paid"),
            ("conversion_to_paid", "Conversion"),
        ],
        series,
        percent=("conversion_to_paid",),
    )
    return {
        "stats": stats,
        "charts": [chart],
        "tables": [table],
        "empty": not series,
        "overview_links": True,
    }


def _trend(value) -> str:
    if value is None:
        return "trend: needs 2+ cohorts"
    arrow = "▲" if value > 0 else "▼" if value < 0 else "="
    return f"trend {arrow} {value * 100:+.2f} pts per cohort"


def _duration(seconds) -> str | None:
    if seconds is None:
        return None
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _layout(**extra) -> dict:
    layout = {
        "margin": {"l": 50, "r": 50, "t": 10, "b": 40},
        "legend": {"orientation": "h", "y": -0.2},
        "hovermode": "closest",
        "font": {"family": "system-ui, sans-serif", "size": 12},
    }
    layout.update(extra)
    return layout


def _period_axis(period: str, starts: list[str]) -> dict:
    """An x axis whose ticks fall on the period starts the points sit at (plotly's own date
    ticks put weekly ones on Sundays, and weekly ticks under two monthly points)."""
    if not starts or period == Period.DAY:
        return {"type": "date"}
    n = len(set(starts))
    if period == Period.MONTH:
        step = 1 if n <= 7 else 2 if n <= 14 else 3
        return {"type": "date", "tick0": min(starts), "dtick": f"M{step}", "tickformat": "%b %Y"}
    step = -(-n // 8)  # at most about 8 ticks
    return {
        "type": "date",
        "tick0": min(starts),
        "dtick": step * 7 * 86400000,
        "tickformat": "%b %d",
    }


# ---------------------------------------------------------------- retention


def _two_axes(left: str, right: str) -> dict:
    """A layout with a second y axis on the right (for traces with "yaxis": "y2")."""
    return _layout(
        yaxis={"title": left, "rangemode": "tozero"},
        yaxis2={"overlaying": "y", "side": "right", "title": right, "rangemode": "tozero"},
    )


def _retention_users_url(request, cohort: str, k: int, breakdown) -> str:
    params = {key: v for key, v in request.GET.items() if key not in ("csv", "page")}
    params.update({"cohort": cohort, "k": k})
    if breakdown is not None:
        params["breakdown_value"] = breakdown
    return reverse("analytics:retention-users") + "?" + urlencode(params)


def _curve(label: str, rates: list, complete: int, i: int) -> list[dict]:
    """A cohort's retention curve: solid over its ended periods, dotted into a running one."""
    color = CURVE_COLORS[i % len(CURVE_COLORS)]
    line = {
        "type": "scatter",
        "mode": "lines+markers",
        "name": label,
        "legendgroup": label,
        "x": list(range(min(complete, len(rates)))),
        "y": rates[:complete],
        "line": {"color": color},
    }
    if complete >= len(rates):
        return [line]
    start = max(complete - 1, 0)
    tail = {
        **line,
        "x": list(range(start, len(rates))),
        "y": rates[start:],
        "line": {"color": color, "dash": "dot"},
        "marker": {"symbol": "circle-open"},
        "showlegend": not complete,
        "hovertemplate": "%{y:.1f}% so far (still running)<extra>" + label + "</extra>",
    }
    return [line, tail] if complete else [tail]


def _present_retention(request, r, data):
    cohorts = r["cohorts"]
    n = max((len(c["retained"]) for c in cohorts), default=0)
    labels = [
        c["cohort"] + (f" · {c['breakdown'] or '(none)'}" if r["breakdown"] else "")
        for c in cohorts
    ]
    z, text, hover, urls = [], [], [], []
    running = False  # whether any listed period is still running (its count partial)
    for c in cohorts:
        rates = [round(v / c["size"] * 100, 1) if c["size"] else None for v in c["retained"]]
        pad = n - len(rates)
        partial = [k >= c["complete"] for k in range(len(rates))]
        running = running or any(partial)
        z.append(rates + [None] * pad)
        text.append(
            [f"{v:.0f}%{'*' if p else ''}" for v, p in zip(rates, partial, strict=True)]
            + [""] * pad
        )
        hover.append(
            [
                f"{v:,} of {c['size']:,} users" + (" so far: still running" if p else "")
                for v, p in zip(c["retained"], partial, strict=True)
            ]
            + [""] * pad
        )
        urls.append(
            [
                _retention_users_url(request, c["cohort"], k, c["breakdown"])
                for k in range(len(rates))
            ]
            + [""] * pad
        )
    periods = [str(k) for k in range(n)]
    heatmap = {
        "wide": True,
        "id": "retention-heatmap",
        "title": "Retention by cohort (click a cell for its users)",
        "table": "cohorts",
        "clickable": True,
        "note": (
            f"* the {r['period']} is still running at the end of the range: its count is partial "
            "and left out of the averages above."
            if running
            else ""
        ),
        "height": max(320, 28 * len(cohorts) + 80),
        "figure": {
            "data": [
                {
                    "type": "heatmap",
                    "z": z,
                    "x": periods,
                    "y": labels,
                    "text": text,
                    "customdata": [
                        [[h, u] for h, u in zip(hr, ur, strict=True)]
                        for hr, ur in zip(hover, urls, strict=True)
                    ],
                    "texttemplate": "%{text}",
                    "hovertemplate": "%{y}, %{x}: %{z:.1f}%<br>%{customdata[0]}<extra></extra>",
                    "colorscale": [[0, "#eef2ff"], [0.5, "#818cf8"], [1, "#312e81"]],
                    "zmin": 0,
                    "zmax": 100,
                    "colorbar": {"title": "%"},
                }
            ],
            "layout": _layout(
                yaxis={"autorange": "reversed", "type": "category"},
                xaxis={
                    "side": "top",
                    "type": "category",
                    "title": f"{r['period']}s since the cohort's start",
                },
                margin={"l": 150, "r": 20, "t": 80, "b": 20},
            ),
        },
    }
    curves = {
        "id": "retention-curves",
        "wide": True,
        "title": "Retention curves",
        "table": "cohorts",
        "note": "Dotted: into a period that is still running." if running else "",
        "figure": {
            "data": [
                trace
                for i, (label, row, c) in enumerate(zip(labels, z, cohorts, strict=True))
                for trace in _curve(label, [v for v in row if v is not None], c["complete"], i)
            ],
            "layout": _layout(
                xaxis={"title": f"{r['period']}s since cohort start", "dtick": 1},
                yaxis={"title": "% retained", "range": [0, 100]},
            ),
        },
    }
    columns = [("cohort", "Cohort")]
    if r["breakdown"]:
        columns.append(("breakdown", r["breakdown"]))
    columns += [("size", "Users")] + [(f"p{k}", f"{r['period']} {k}") for k in range(n)]
    rows = [
        {
            "cohort": c["cohort"],
            "breakdown": c["breakdown"],
            "size": c["size"],
            **{f"p{k}": v for k, v in enumerate(c["retained"])},
        }
        for c in cohorts
    ]
    links = {
        f"p{k}": (
            lambda row, k=k: _retention_users_url(request, row["cohort"], k, row["breakdown"])
        )
        for k in range(n)
    }
    stats = [
        (
            f"Average retention, {r['period']} {k.removeprefix('period_')}",
            _pct(v["average"]),
            f"{v['cohorts']} cohorts · {_trend(v['trend'])}",
        )
        for k, v in r["summary"].items()
    ]
    return {
        "stats": stats,
        "charts": [heatmap, curves],
        "tables": [Table("cohorts", "Cohorts (users retained per period)", columns, rows, links)],
        "empty": not cohorts,
    }


RETENTION_FIELDS = [
    _text("start_event", "Start event", "signup"),
    _text("return_event", "Return event", "session_start"),
    _text("periods", "Periods", "12", size=3, kind="number"),
    _select("mode", "Counting", [m.value for m in Mode], Mode.ON.value),
    _select("cohort_type", "Cohorts", [c.value for c in CohortType], CohortType.FIRST_TIME.value),
]


def _users_table(name, title, result, request) -> tuple[Table, dict]:
    table = Table(name, title, [("user_id", "User")], [{"user_id": u} for u in result["users"]])
    page = int(request.GET.get("page") or 1)
    size = int(request.GET.get("page_size") or 100)
    pages = max(1, -(-result["total"] // size))
    pager = {
        "page": page,
        "pages": pages,
        "total": result["total"],
        "prev": _query_string(request, page=page - 1, csv=None) if page > 1 else None,
        "next": _query_string(request, page=page + 1, csv=None) if page < pages else None,
    }
    return table, pager


def _fetch_users(data, limit=None):
    return data.users(export_limit=limit)


def _users_page(request, analysis: Analysis, fetch: Callable, title: str):
    if request.GET.get("csv") == "users":  # the whole list, not one page
        params = request.GET.copy()
        params["page"], params["page_size"] = "1", "1000"
        data = analysis.input_class(data=params)
        if data.is_valid():
            try:
                result = fetch(data, EXPORT_LIMIT)
            except QueryTimeout:
                result = None
            if result is not None:
                table = Table(
                    "users", title, [("user_id", "User")], [{"user_id": u} for u in result["users"]]
                )
                return table.csv_response(analysis.name)
    return _page(request, analysis)


def _present_retention_users(request, result, data):
    d = data.validated_data
    title = f"Cohort {d['cohort'].isoformat()}, {d['period'].value} {d['k']}"
    if d.get("breakdown_value") is not None and d.get("breakdown"):
        title += f", {d['breakdown'].name} = {d['breakdown_value'] or '(none)'}"
    table, pager = _users_table("users", title, result, request)
    back = (
        reverse("analytics:retention")
        + "?"
        + _query_string(
            request, cohort=None, k=None, breakdown_value=None, page=None, page_size=None, csv=None
        )
    )
    return {
        "tables": [table],
        "pager": pager,
        "empty": not result["total"],
        "back": back,
        "stats": [("Users in this cell", f"{result['total']:,}", title)],
    }


# ---------------------------------------------------------------- funnel


def _dropped_url(request, step: int) -> str:
    return reverse("analytics:funnel-dropped") + "?" + _query_string(request, step=step, csv=None)


def _present_funnel(request, r, data):
    steps = r["steps"]
    groups = r.get("breakdowns") or [{"breakdown": None, "steps": steps, "trend": r["trend"]}]
    bars = [
        {
            "type": "bar",
            "name": g["breakdown"] if g["breakdown"] is not None else "All users",
            "x": [f"{i + 1}.<br>{s['label']}" for i, s in enumerate(g["steps"])],
            "y": [s["count"] for s in g["steps"]],
            "text": [_pct(s["conversion_from_start"]) for s in g["steps"]],
            "textposition": "auto",
            "marker": {"color": COLORS[i % len(COLORS)]},
        }
        for i, g in enumerate(groups)
    ]
    charts = [
        {
            "id": "funnel-steps",
            "title": "Users reaching each step",
            "table": "steps",
            "figure": {"data": bars, "layout": _layout(barmode="group", yaxis={"title": "users"})},
        },
        {
            "id": "funnel-time",
            "title": "Time to convert (entry to last step)",
            "table": "time_to_convert",
            "figure": {
                "data": [
                    {
                        "type": "bar",
                        "x": [b["bucket"] for b in r["time_to_convert"]],
                        "y": [b["users"] for b in r["time_to_convert"]],
                        "marker": {"color": COLORS[1]},
                    }
                ],
                "layout": _layout(yaxis={"title": "users who converted"}),
            },
        },
    ]
    charts.append(_funnel_trend_chart(r, groups))
    rows = []
    for g in groups:
        for i, s in enumerate(g["steps"], start=1):
            rows.append(
                {
                    "breakdown": g["breakdown"],
                    "step": i,
                    **s,
                    "median_time": _duration(s["median_seconds_to_convert"]),
                }
            )
    columns = [("step", "#"), ("label", "Step")]
    if r.get("breakdowns"):
        columns.insert(0, ("breakdown", r["breakdown_by"]))
    columns += [
        ("count", "Users"),
        ("conversion_from_start", "From start"),
        ("conversion_from_previous", "From previous"),
        ("dropped", "Dropped"),
        ("median_time", "Median time from previous"),
        ("median_seconds_to_convert", "Median seconds"),
    ]
    links = {"dropped": lambda row: _dropped_url(request, row["step"]) if row["step"] > 1 else None}
    stats = [
        ("Entered", f"{steps[0]['count']:,}", steps[0]["label"]),
        ("Converted", _pct(steps[-1]["conversion_from_start"]), f"{steps[-1]['count']:,} users"),
    ]
    return {
        "stats": stats,
        "charts": charts,
        "tables": [
            Table(
                "steps",
                "Steps",
                columns,
                rows,
                links,
                percent=("conversion_from_start", "conversion_from_previous"),
            ),
            Table(
                "time_to_convert",
                "Time to convert",
                [("bucket", "Time"), ("users", "Users")],
                r["time_to_convert"],
            ),
            Table(
                "trend",
                f"Conversion by {r['period']} of entry",
                ([("breakdown", r["breakdown_by"])] if r.get("breakdowns") else [])
                + [
                    ("period", r["period"].capitalize()),
                    ("entered", "Entered"),
                    ("converted", "Converted"),
                    ("conversion", "Conversion"),
                ],
                [{"breakdown": g["breakdown"], **t} for g in groups for t in g["trend"]],
                percent=("conversion",),
            ),
        ],
        "empty": not steps[0]["count"],
    }


def _funnel_trend_chart(r, groups) -> dict:
    """Conversion (entry to last step) by period of entry: one line per breakdown group, over
    the users entering each period (bars) when there is no breakdown."""
    x = [t["period"] for t in r["trend"]]
    split = bool(r.get("breakdowns"))
    lines = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": g["breakdown"] if split else "Conversion",
            "x": x,
            "y": [None if t["conversion"] is None else t["conversion"] * 100 for t in g["trend"]],
            "yaxis": "y" if split else "y2",
            "line": {"color": COLORS[i % len(COLORS)]},
        }
        for i, g in enumerate(groups)
    ]
    if split:
        layout = _layout(yaxis={"title": "% converted", "rangemode": "tozero"})
        data = lines
    else:
        entered = {
            "type": "bar",
            "name": "Entered",
            "x": x,
            "y": [t["entered"] for t in r["trend"]],
            "marker": {"color": "#c7d2fe"},
        }
        data = [entered, *lines]
        layout = _two_axes("users entering", "% converted")
    layout["xaxis"] = _period_axis(r["period"], x)
    young = (dt.datetime.now(dt.UTC).date() - dt.date.fromisoformat(r["date_to"])).days
    return {
        "id": "funnel-trend",
        "wide": True,
        "title": f"Conversion by {r['period']} of entry",
        "table": "trend",
        "note": (
            f"Users who entered in the last {r['window_days']} days may still convert."
            if young < r["window_days"]
            else ""
        ),
        "figure": {"data": data, "layout": layout},
    }


FUNNEL_FIELDS = [
    _text(
        "steps",
        "Steps (comma-separated; event:key=value filters)",
        "signup,project_created,video_rendered,subscription_started",
        size=60,
    ),
    _text("window_days", "Window (days)", "14", size=3, kind="number"),
    _select("order", "Order", [o.value for o in Order], Order.SEQUENTIAL.value),
]


def _present_dropped(request, result, data):
    d = data.validated_data
    step = d["steps"][d["step"] - 1]
    title = f"Reached step {d['step'] - 1} but not step {d['step']} ({step.label})"
    table, pager = _users_table("users", title, result, request)
    back = (
        reverse("analytics:funnel")
        + "?"
        + _query_string(request, step=None, page=None, page_size=None, csv=None)
    )
    return {
        "tables": [table],
        "pager": pager,
        "empty": not result["total"],
        "back": back,
        "stats": [("Users who dropped", f"{result['total']:,}", title)],
    }


# ---------------------------------------------------------------- revenue


def _period_name(period: str, start: str) -> tuple[str, bool]:
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


def _partial_note(r) -> str:
    """A chart note when the range starts or ends inside a period: that period's counts cover
    only part of it (a dip that is not real)."""
    p = Period(r["period"])
    parts = []
    date_from = dt.date.fromisoformat(r["date_from"])
    if p.start_of(date_from) < date_from:
        parts.append(f"the first {p.value} starts only at {r['date_from']}")
    date_to = dt.date.fromisoformat(r["date_to"])
    if date_to >= dt.datetime.now(dt.UTC).date():  # today is in it: it has not ended
        parts.append(f"the last {p.value} is still running")
    elif p.last_day(p.start_of(date_to)) > date_to:
        parts.append(f"the last {p.value} is cut at {r['date_to']}")
    if not parts:
        return ""
    text = " and ".join(parts)
    cover = (
        "its counts cover only part of it"
        if len(parts) == 1
        else f"both cover only part of a {p.value}"
    )
    return f"{text[0].upper()}{text[1:]}: {cover}."


def _present_revenue(request, r, data):
    p = r["periods"]
    x = [row["period"] for row in p]
    movements = [
        ("new_mrr", "New", COLORS[1], 1),
        ("expansion_mrr", "Expansion", COLORS[4], 1),
        ("contraction_mrr", "Contraction", COLORS[2], -1),
        ("churned_mrr", "Churned", COLORS[3], -1),
    ]
    data_ = [
        {
            "type": "bar",
            "name": label,
            "x": x,
            "y": [sign * row[key] for row in p],
            "marker": {"color": color},
        }
        for key, label, color, sign in movements
    ]
    data_.append(
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "MRR",
            "x": x,
            "y": [row["mrr"] for row in p],
            "line": {"color": COLORS[0], "width": 3},
        }
    )
    tiers = sorted({t for row in p for t in row["paying_users_by_tier"]})
    tier_rows = [
        {"period": row["period"], **{t: row["paying_users_by_tier"].get(t, 0) for t in tiers}}
        for row in p
    ]
    charts = [
        {
            "id": "revenue-mrr",
            "title": "MRR and its movements ($)",
            "table": "mrr",
            "figure": {
                "data": data_,
                "layout": _layout(
                    barmode="relative",
                    yaxis={"title": "$ per month"},
                    xaxis=_period_axis(r["period"], x),
                ),
            },
        },
        {
            "id": "revenue-tiers",
            "title": "Paying users by tier",
            "table": "tiers",
            "figure": {
                "data": [
                    {
                        "type": "bar",
                        "name": t,
                        "x": x,
                        "y": [row[t] for row in tier_rows],
                        "marker": {"color": COLORS[i % len(COLORS)]},
                    }
                    for i, t in enumerate(tiers)
                ],
                "layout": _layout(
                    barmode="stack", yaxis={"title": "users"}, xaxis=_period_axis(r["period"], x)
                ),
            },
        },
    ]
    last = p[-1] if p else None
    stats = []
    if last:
        name, running = _period_name(r["period"], last["period"])
        stats = [
            ("MRR", f"${last['mrr']:,.2f}", f"{name}, to date" if running else f"end of {name}"),
            ("Paying users", f"{last['paying_users']:,}", ""),
            ("ARPU", f"${last['arpu']:,.2f}" if last["arpu"] else NO_VALUE, "MRR / paying users"),
            ("Churned MRR", f"${last['churned_mrr']:,.2f}", f"in {name}"),
        ]
    columns = [
        ("period", "Period"),
        ("mrr", "MRR"),
        ("new_mrr", "New"),
        ("expansion_mrr", "Expansion"),
        ("contraction_mrr", "Contraction"),
        ("churned_mrr", "Churned"),
        ("paying_users", "Paying users"),
        ("arpu", "ARPU"),
    ]
    return {
        "stats": stats,
        "charts": charts,
        "tables": [
            Table("mrr", "MRR by period", columns, p),
            Table(
                "tiers",
                "Paying users by tier",
                [("period", "Period")] + [(t, t) for t in tiers],
                tier_rows,
            ),
        ],
        "empty": not p,
    }


# ---------------------------------------------------------------- feature usage


def _present_usage(request, r, data):
    rows = r["rows"]
    key = (
        (lambda row: f"{row['item']} · {row['breakdown']}")
        if r["breakdown"]
        else (lambda row: row["item"] or "(none)")
    )
    series: dict[str, list] = {}
    for row in rows:
        series.setdefault(key(row), []).append(row)

    def lines(value, title):
        return {
            "data": [
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": name,
                    "x": [p["period"] for p in pts],
                    "y": [p[value] for p in pts],
                }
                for name, pts in sorted(series.items())
            ],
            "layout": _layout(
                yaxis={"title": title},
                xaxis=_period_axis(r["period"], [row["period"] for row in rows]),
            ),
        }

    share = lines("share_of_active", "share of active users")
    share["layout"]["yaxis"]["tickformat"] = ".0%"
    charts = [
        {
            "id": "usage-users",
            "title": f"Users of each {r['dimension'].replace('_', ' ')}",
            "table": "usage",
            "note": _partial_note(r),
            "figure": lines("users", "users"),
        },
        {"id": "usage-share", "title": "Share of active users", "table": "usage", "figure": share},
    ]
    columns = [("period", "Period"), ("item", r["dimension"])]
    if r["breakdown"]:
        columns.append(("breakdown", r["breakdown"]))
    columns += [
        ("events", "Events"),
        ("users", "Users"),
        ("active_users", "Active users"),
        ("share_of_active", "Share of active"),
    ]
    return {
        "charts": charts,
        "tables": [
            Table("usage", "Usage by period", columns, rows, percent=("share_of_active",)),
            Table(
                "top_properties",
                "Top properties",
                [("key", "Property"), ("value", "Value"), ("events", "Events")],
                r["top_properties"],
            ),
        ],
        "empty": not rows,
    }


# ---------------------------------------------------------------- satisfaction


def _present_satisfaction(request, r, data):
    dist = r["distribution"]

    def trend(rows, title):
        groups: dict[str, list] = {}
        for row in rows:
            groups.setdefault(row["value"] or "(none)", []).append(row)
        return {
            "data": [
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": name,
                    "x": [p["period"] for p in pts],
                    "y": [p["average"] for p in pts],
                }
                for name, pts in sorted(groups.items())
            ],
            "layout": _layout(
                yaxis={"title": title, "range": [0, 10.5]},
                xaxis=_period_axis(r["period"], [row["period"] for row in rows]),
            ),
        }

    charts = [
        {
            "id": "sat-distribution",
            "title": "Score distribution",
            "table": "distribution",
            "figure": {
                "data": [
                    {
                        "type": "bar",
                        "x": [d["score"] for d in dist],
                        "y": [d["responses"] for d in dist],
                        "marker": {"color": COLORS[0]},
                    }
                ],
                "layout": _layout(
                    xaxis={"dtick": 1, "title": "score"}, yaxis={"title": "responses"}
                ),
            },
        },
        {
            "id": "sat-tier",
            "title": "Average score by tier",
            "table": "by_tier",
            "figure": trend(r["by_tier"], "average score"),
        },
        {
            "id": "sat-style",
            "title": "Average score by video style",
            "table": "by_video_style",
            "figure": trend(r["by_video_style"], "average score"),
        },
    ]
    responses = sum(d["responses"] for d in dist)
    mean = sum(d["score"] * d["responses"] for d in dist) / responses if responses else None
    stats = [
        ("Responses", f"{responses:,}", ""),
        ("Average score", f"{mean:.2f}" if mean is not None else NO_VALUE, "1-10"),
        (
            "Users with falling scores",
            f"{r['falling_users_total']:,}",
            f"latest at least {r['min_drop']} below first",
        ),
    ]
    trend_cols = [
        ("period", "Period"),
        ("value", "Group"),
        ("average", "Average"),
        ("responses", "Responses"),
    ]
    return {
        "stats": stats,
        "charts": charts,
        "tables": [
            Table(
                "distribution",
                "Score distribution",
                [("score", "Score"), ("responses", "Responses"), ("users", "Users")],
                dist,
            ),
            Table("by_tier", "By tier", trend_cols, r["by_tier"]),
            Table("by_video_style", "By video style", trend_cols, r["by_video_style"]),
            Table(
                "falling_users",
                "Users with falling scores",
                [
                    ("user_id", "User"),
                    ("first_score", "First"),
                    ("last_score", "Latest"),
                    ("drop", "Drop"),
                    ("responses", "Responses"),
                ],
                r["falling_users"],
            ),
        ],
        "empty": not dist,
    }


# ---------------------------------------------------------------- the views

OVERVIEW = Analysis(
    "overview",
    "Product overview",
    api.OverviewInput,
    lambda d: api.overview(d.query()),
    _present_overview,
)
RETENTION = Analysis(
    "retention",
    "Retention",
    api.RetentionInput,
    lambda d: api.retention(d.query()),
    _present_retention,
    extra_fields=RETENTION_FIELDS,
)
RETENTION_USERS = Analysis(
    "retention",
    "Retention: users in a cell",
    api.RetentionUsersInput,
    _fetch_users,
    _present_retention_users,
    template="analytics/users.html",
    extra_fields=[
        *RETENTION_FIELDS,
        _text("cohort", "Cohort", kind="date"),
        _text("k", "Period", size=3, kind="number"),
        _text("breakdown_value", "Breakdown value"),
    ],
)
FUNNEL = Analysis(
    "funnel",
    "Funnel",
    api.FunnelInput,
    lambda d: api.funnel(d.query()),
    _present_funnel,
    extra_fields=FUNNEL_FIELDS,
)
FUNNEL_DROPPED = Analysis(
    "funnel",
    "Funnel: users who dropped",
    api.FunnelDroppedInput,
    _fetch_users,
    _present_dropped,
    template="analytics/users.html",
    extra_fields=[*FUNNEL_FIELDS, _text("step", "Dropped before step", size=3, kind="number")],
)
REVENUE = Analysis(
    "revenue", "Revenue", api.RevenueInput, lambda d: api.revenue(d.query()), _present_revenue
)
USAGE = Analysis(
    "feature_usage",
    "Feature usage",
    api.UsageInput,
    lambda d: api.feature_usage(d.query()),
    _present_usage,
    extra_fields=[
        _select("dimension", "Usage of", [x.value for x in Dimension], Dimension.FEATURE.value)
    ],
)
SATISFACTION = Analysis(
    "satisfaction",
    "Satisfaction",
    api.SatisfactionInput,
    lambda d: api.satisfaction(d.query()),
    _present_satisfaction,
    extra_fields=[_text("min_drop", "Falling by at least", "2", size=3, kind="number")],
)


def _view(analysis: Analysis, *, users: bool = False):
    def view(request):
        if users:
            return _users_page(request, analysis, _fetch_users, "users")
        return _page(request, analysis)

    view.__name__ = analysis.name + ("_users" if users else "")
    return role_required()(view)


overview = _view(OVERVIEW)
retention = _view(RETENTION)
retention_users = _view(RETENTION_USERS, users=True)
funnel = _view(FUNNEL)
funnel_dropped = _view(FUNNEL_DROPPED, users=True)
revenue = _view(REVENUE)
feature_usage = _view(USAGE)
satisfaction = _view(SATISFACTION)
