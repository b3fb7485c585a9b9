"""Cohort retention from the per-user rollups (first occurrence per event, active days).

A user's cohort is the period of their first-ever start event, when that first event falls in
[date_from, date_to] (first-time cohorts), or every period in the range in which they did the
start event (recurring cohorts). `retained[0]` is the cohort size; `retained[k]` counts the
cohort's users with a return event in period k ("on") or in any period >= k ("on_or_after").
Return events before the cohort, in period 0 or after date_to are not counted. Only periods
that have begun by date_to are listed, so later cohorts have shorter rows; `complete` counts
the leading ones that had also ended (the last is usually still running, its count partial),
and the summary averages only those. Buckets are UTC.
A breakdown splits users by the property on their first start event.

Input, selector, presenter and pages of cohort retention and a cell's users.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlencode

import numpy as np
from django.urls import reverse
from rest_framework import serializers

import charts
from analytics.cohorts.selectors import CohortFilter
from analytics.product.common import (
    Breakdown,
    InCohortInput,
    PageInput,
    Period,
    RangeInput,
    event_field,
    page_window,
    query_timeout,
    ratio,
)
from analytics.product.pages import (
    Analysis,
    Table,
    analysis_view,
    percent,
    select_field,
    text_field,
    trend_text,
    users_panel,
)
from analytics.store import store
from analytics.store.cache import cache_ttl, cached

SUMMARY_PERIODS = (1, 3, 6)


class Mode(StrEnum):
    ON = "on"
    ON_OR_AFTER = "on_or_after"


class CohortType(StrEnum):
    FIRST_TIME = "first_time"
    RECURRING = "recurring"


@dataclass(frozen=True)
class RetentionQuery:
    date_from: dt.date
    date_to: dt.date
    period: Period = Period.MONTH
    start_event: str = "signup"
    return_event: str = "session_start"
    periods: int = 12
    mode: Mode = Mode.ON
    cohort_type: CohortType = CohortType.FIRST_TIME
    breakdown: Breakdown | None = None
    in_cohort: CohortFilter | None = None


def _starts_sql(query: RetentionQuery) -> str:
    """(user_id, cohort, bval) rows: the users of each cohort."""
    if query.breakdown:
        bval = query.breakdown.json_sql("props")
        props = ", argMinMerge(first_props) AS props"
    else:  # the properties are only read for a breakdown
        bval, props = "''", ""
    firsts = (
        f"SELECT user_id, min(first_ts) AS first_ts{props} "
        "FROM panalytics_user_first WHERE event = {start:String}"
        f"{' AND ' + query.in_cohort.sql() if query.in_cohort else ''} GROUP BY user_id"
    )
    if query.cohort_type is CohortType.FIRST_TIME:
        return (
            f"SELECT user_id, {query.period.bucket}(toDate(first_ts)) AS cohort, {bval} AS bval "
            f"FROM ({firsts}) "
            "WHERE toDate(first_ts) BETWEEN {date_from:Date} AND {date_to:Date}"
        )
    return (
        f"SELECT DISTINCT d.user_id AS user_id, {query.period.bucket}(d.day) AS cohort, {bval} AS bval "
        "FROM panalytics_user_days AS d "
        f"INNER JOIN ({firsts}) AS f ON f.user_id = d.user_id "
        "WHERE d.event = {start:String} AND d.day BETWEEN {date_from:Date} AND {date_to:Date}"
    )


def _active_periods_sql(query: RetentionQuery) -> str:
    """(user_id, p): the periods in which users did the return event, up to date_to. Whole
    weeks and months come from the period rollup; the period holding date_to, which may end
    after it, from active days."""
    bucket = query.period.bucket
    days = (
        f"SELECT user_id, {bucket}(day) AS p FROM panalytics_user_days "
        "WHERE event = {ret:String} AND day <= {date_to:Date} "
        f"AND day >= {{first_period:Date}} AND day >= {bucket}({{date_to:Date}})"
    )
    if query.period is Period.DAY:
        return days.replace(f" AND day >= {bucket}({{date_to:Date}})", "")
    return (
        "SELECT user_id, start AS p FROM panalytics_user_periods "
        "WHERE kind = {kind:String} AND event = {ret:String} "
        f"AND start >= {{first_period:Date}} AND start < {bucket}({{date_to:Date}}) "
        f"UNION ALL {days}"
    )


def _returns_sql(query: RetentionQuery) -> str:
    """(user_id, cohort, bval, k): the periods after its cohort in which a user returned.
    One aggregation per user over cohorts and active periods together (no join)."""
    offset = query.period.offset_sql("cohort", "p")
    return (
        "SELECT user_id, cohort, bval, k FROM ("
        "  SELECT user_id, groupUniqArrayIf(d, src = 0) AS cohorts, anyIf(bval, src = 0) AS bval,"
        "         groupUniqArrayIf(d, src = 1) AS periods"
        "  FROM ("
        f"    SELECT user_id, cohort AS d, bval, 0 AS src FROM ({_starts_sql(query)})"
        "     UNION ALL"
        f"    SELECT user_id, p AS d, '' AS bval, 1 AS src FROM ({_active_periods_sql(query)})"
        "  ) GROUP BY user_id HAVING length(cohorts) > 0"
        ") ARRAY JOIN cohorts AS cohort "
        f"ARRAY JOIN arrayMap(p -> {offset}, arrayFilter(p -> p > cohort, periods)) AS k"
    )


def _params(query: RetentionQuery) -> dict:
    params = {
        "start": query.start_event,
        "ret": query.return_event,
        "date_from": query.date_from.isoformat(),
        "date_to": query.date_to.isoformat(),
        "first_period": query.period.start_of(query.date_from).isoformat(),
        "kind": query.period.value,
    }
    if query.breakdown:
        params.update(query.breakdown.params)
    if query.in_cohort:
        params.update(query.in_cohort.params)
    return params


def _matrix_sql(query: RetentionQuery) -> str:
    starts = f"SELECT cohort, bval, count() AS n, -1 AS k FROM ({_starts_sql(query)}) GROUP BY cohort, bval"
    if query.mode is Mode.ON:
        returned = (
            f"SELECT cohort, bval, uniqExact(user_id) AS n, k FROM ({_returns_sql(query)}) "
            "WHERE k <= {periods:UInt32} GROUP BY cohort, bval, k"
        )
    else:  # a histogram of each user's last period; cumulated from the end in Python
        returned = (
            "SELECT cohort, bval, count() AS n, least(k, {periods:UInt32}) AS k FROM ("
            f"  SELECT user_id, cohort, bval, max(k) AS k FROM ({_returns_sql(query)}) "
            "  GROUP BY user_id, cohort, bval"
            ") GROUP BY cohort, bval, k"
        )
    return f"{starts} UNION ALL {returned}"


def retention(query: RetentionQuery) -> dict:
    return cached(
        "retention", {"query": query}, lambda: _retention(query), ttl=cache_ttl(query.date_to)
    )


def _retention(query: RetentionQuery) -> dict:
    rows = store().query(
        _matrix_sql(query), {**_params(query), "periods": query.periods}, timeout=query_timeout()
    )
    last = query.period.start_of(query.date_to)
    groups: dict[tuple[str, str], dict] = {}
    for row in rows:
        if row["k"] == -1:
            cohort = dt.date.fromisoformat(row["cohort"])
            observable = min(query.periods, query.period.offset(cohort, last))
            groups[(row["cohort"], row["bval"])] = {
                "cohort": row["cohort"],
                "breakdown": row["bval"] if query.breakdown else None,
                "size": row["n"],
                "retained": [row["n"]] + [0] * observable,
                "complete": _complete(query, cohort, observable + 1),
            }
    for row in rows:
        group = groups.get((row["cohort"], row["bval"]))
        if row["k"] == -1 or group is None:
            continue
        if query.mode is Mode.ON:
            if row["k"] < len(group["retained"]):
                group["retained"][row["k"]] += row["n"]
        else:
            for k in range(1, min(row["k"], len(group["retained"]) - 1) + 1):
                group["retained"][k] += row["n"]
    cohorts = sorted(groups.values(), key=lambda g: (g["cohort"], g["breakdown"] or ""))
    return {
        "period": query.period.value,
        "start_event": query.start_event,
        "return_event": query.return_event,
        "mode": query.mode.value,
        "cohort_type": query.cohort_type.value,
        "breakdown": query.breakdown.name if query.breakdown else None,
        "periods": query.periods,
        "date_from": query.date_from.isoformat(),
        "date_to": query.date_to.isoformat(),
        "cohorts": cohorts,
        "summary": retention_summary(cohorts, periods=query.periods),
    }


def _complete(query: RetentionQuery, cohort: dt.date, listed: int) -> int:
    """How many of a cohort's `listed` periods had ended by the end of date_to."""
    p = query.period
    return sum(1 for k in range(listed) if p.last_day(p.add(cohort, k)) <= query.date_to)


def retention_summary(cohorts: list[dict], *, periods: int) -> dict:
    """Size-weighted average retention at periods 1, 3 and 6 over the cohorts whose period
    had ended (a running period's partial count would drag both down), and the trend: the
    least-squares slope of the per-cohort rate across those cohorts in order (change per
    cohort; positive means newer cohorts retain better)."""
    by_cohort: dict[str, list] = {}
    for c in cohorts:  # breakdown groups of one cohort add up; they share `complete`
        size_and_retained = by_cohort.setdefault(c["cohort"], [0, [], c["complete"]])
        size_and_retained[0] += c["size"]
        kept = size_and_retained[1]
        for k, n in enumerate(c["retained"]):
            if k < len(kept):
                kept[k] += n
            else:
                kept.append(n)
    summary = {}
    for k in SUMMARY_PERIODS:
        if k > periods:
            continue
        reached = [
            (size, kept[k])
            for _c, (size, kept, complete) in sorted(by_cohort.items())
            if complete > k and size
        ]
        rates = [n / size for size, n in reached]
        trend = None
        if len(rates) >= 2:
            trend = round(float(np.polyfit(np.arange(len(rates)), rates, 1)[0]), 6)
        summary[f"period_{k}"] = {
            "average": ratio(sum(n for _s, n in reached), sum(s for s, _n in reached)),
            "trend": trend,
            "cohorts": len(reached),
        }
    return summary


def retention_users(
    query: RetentionQuery,
    *,
    cohort: dt.date,
    k: int,
    breakdown_value: str | None,
    limit: int,
    offset: int,
) -> dict:
    """The users of one heatmap cell (k = 0: the whole cohort), ordered by user id."""
    params = {
        **_params(query),
        "cohort": cohort.isoformat(),
        "k": k,
        "bval": breakdown_value or "",
        "limit": limit,
        "offset": offset,
    }
    only_group = (
        "AND bval = {bval:String}" if query.breakdown and breakdown_value is not None else ""
    )
    if k == 0:
        inner = f"SELECT user_id FROM ({_starts_sql(query)}) WHERE cohort = {{cohort:Date}} {only_group}"
    else:
        having = "k = {k:UInt32}" if query.mode is Mode.ON else "k >= {k:UInt32}"
        inner = (
            f"SELECT user_id FROM ({_returns_sql(query)}) "
            f"WHERE cohort = {{cohort:Date}} {only_group} GROUP BY user_id HAVING max({having})"
        )
    sql = (
        f"SELECT user_id, count() OVER () AS total FROM ({inner}) GROUP BY user_id "
        "ORDER BY user_id LIMIT {limit:UInt32} OFFSET {offset:UInt32}"
    )
    rows = store().query(sql, params, timeout=query_timeout())
    total = rows[0]["total"] if rows else 0
    if not rows and offset:
        count = store().query(
            f"SELECT uniqExact(user_id) AS n FROM ({inner})", params, timeout=query_timeout()
        )
        total = count[0]["n"]
    return {"total": total, "users": [r["user_id"] for r in rows]}


# --- input


class RetentionInput(RangeInput, InCohortInput):
    default_days = 365
    default_period = Period.MONTH

    start_event = event_field("signup")
    return_event = event_field("session_start")
    periods = serializers.IntegerField(min_value=1, max_value=12, default=12)
    mode = serializers.ChoiceField(choices=[m.value for m in Mode], default=Mode.ON.value)
    cohort_type = serializers.ChoiceField(
        choices=[c.value for c in CohortType], default=CohortType.FIRST_TIME.value
    )

    def query(self) -> RetentionQuery:
        values = self.validated_data
        return RetentionQuery(
            date_from=values["date_from"],
            date_to=values["date_to"],
            period=values["period"],
            start_event=values["start_event"],
            return_event=values["return_event"],
            periods=values["periods"],
            mode=Mode(values["mode"]),
            cohort_type=CohortType(values["cohort_type"]),
            breakdown=values["breakdown"],
            in_cohort=values.get("in_cohort"),
        )


class RetentionUsersInput(RetentionInput, PageInput):
    cohort = serializers.DateField()
    k = serializers.IntegerField(min_value=0, max_value=12)
    breakdown_value = serializers.CharField(required=False, allow_blank=True, max_length=200)


# --- page


def _retention_users_url(request, cohort: str, k: int, breakdown) -> str:
    params = {key: v for key, v in request.GET.items() if key not in ("csv", "page")}
    params.update({"cohort": cohort, "k": k})
    if breakdown is not None:
        params["breakdown_value"] = breakdown
    return reverse("analytics:retention-users") + "?" + urlencode(params)


def _curve(label: str, rates: list, complete: int, i: int) -> list[dict]:
    """A cohort's retention curve: solid over its ended periods, dotted into a running one."""
    color = charts.color(i)
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


def present_retention(request, result, params):
    cohorts = result["cohorts"]
    n = max((len(c["retained"]) for c in cohorts), default=0)
    labels = [
        c["cohort"] + (f" · {c['breakdown'] or '(none)'}" if result["breakdown"] else "")
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
            f"* the {result['period']} is still running at the end of the range: its count is partial "
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
                    "colorscale": charts.SEQUENTIAL,
                    "zmin": 0,
                    "zmax": 100,
                    "colorbar": {"title": "%"},
                }
            ],
            "layout": charts.layout(
                yaxis={"autorange": "reversed", "type": "category"},
                xaxis={
                    "side": "top",
                    "type": "category",
                    "title": f"{result['period']}s since the cohort's start",
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
            "layout": charts.layout(
                xaxis={"title": f"{result['period']}s since cohort start", "dtick": 1},
                yaxis={"title": "% retained", "range": [0, 100]},
            ),
        },
    }
    columns = [("cohort", "Cohort")]
    if result["breakdown"]:
        columns.append(("breakdown", result["breakdown"]))
    columns += [("size", "Users")] + [(f"p{k}", f"{result['period']} {k}") for k in range(n)]
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
            f"Average retention, {result['period']} {k.removeprefix('period_')}",
            percent(v["average"]),
            f"{v['cohorts']} cohorts · {trend_text(v['trend'])}",
        )
        for k, v in result["summary"].items()
    ]
    return {
        "stats": stats,
        "charts": [heatmap, curves],
        "tables": [Table("cohorts", "Cohorts (users retained per period)", columns, rows, links)],
        "empty": not cohorts,
    }


RETENTION_FIELDS = [
    text_field("start_event", "Start event", "signup"),
    text_field("return_event", "Return event", "session_start"),
    text_field("periods", "Periods", "12", size=3, kind="number"),
    select_field("mode", "Counting", [m.value for m in Mode], Mode.ON.value),
    select_field(
        "cohort_type", "Cohorts", [c.value for c in CohortType], CohortType.FIRST_TIME.value
    ),
]


def present_retention_users(request, result, params):
    values = params.validated_data
    title = f"Cohort {values['cohort'].isoformat()}, {values['period'].value} {values['k']}"
    if values.get("breakdown_value") is not None and values.get("breakdown"):
        title += f", {values['breakdown'].name} = {values['breakdown_value'] or '(none)'}"
    return users_panel(
        request,
        result,
        title=title,
        stat="Users in this cell",
        back="analytics:retention",
        own=("cohort", "k", "breakdown_value"),
    )


def cell_users(params: RetentionUsersInput, *, export_limit: int | None = None) -> dict:
    """The requested page of a retention cell's users, or the first `export_limit` of them."""
    values = params.validated_data
    return retention_users(
        params.query(),
        cohort=values["cohort"],
        k=values["k"],
        breakdown_value=values.get("breakdown_value"),
        **page_window(values, export_limit),
    )


RETENTION = Analysis(
    "retention",
    "Retention",
    RetentionInput,
    lambda params: retention(params.query()),
    present_retention,
    extra_fields=RETENTION_FIELDS,
)
RETENTION_USERS = Analysis(
    "retention",
    "Retention: users in a cell",
    RetentionUsersInput,
    cell_users,
    present_retention_users,
    template="analytics/users.html",
    extra_fields=[
        *RETENTION_FIELDS,
        text_field("cohort", "Cohort", kind="date"),
        text_field("k", "Period", size=3, kind="number"),
        text_field("breakdown_value", "Breakdown value"),
    ],
)
page = analysis_view(RETENTION)
users_page = analysis_view(RETENTION_USERS, users=True)
