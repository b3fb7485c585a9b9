"""The product manager's overview: active users, new signups, conversion to paid, retention.

DAU / WAU / MAU are distinct users with any event on date_to, in the 7 and the 30 days
ending date_to. Conversion to paid: of the users whose first signup is in the range, the
share whose first subscription_started is on or before date_to.

Input, selector, presenter and page of the overview (the analytics index).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import charts
from analytics.catalog import Event
from analytics.product.common import (
    Period,
    RangeInput,
    query_timeout,
    ratio,
)
from analytics.product.pages import (
    Analysis,
    Table,
    analysis_view,
    partial_note,
    percent,
    trend_text,
)
from analytics.product.retention import RetentionQuery, retention
from analytics.store import store
from analytics.store.cache import cache_ttl, cached


@dataclass(frozen=True)
class OverviewQuery:
    date_from: dt.date
    date_to: dt.date
    period: Period = Period.WEEK


def overview(query: OverviewQuery) -> dict:
    return cached(
        "overview", {"query": query}, lambda: _overview(query), ttl=cache_ttl(query.date_to)
    )


def _overview(query: OverviewQuery) -> dict:
    params = {
        "date_from": query.date_from.isoformat(),
        "date_to": query.date_to.isoformat(),
        "d7": (query.date_to - dt.timedelta(days=6)).isoformat(),
        "d30": (query.date_to - dt.timedelta(days=29)).isoformat(),
        "signup": Event.SIGNUP.value,
        "paid": Event.SUBSCRIPTION_STARTED.value,
    }
    db = store()
    with db.session():
        active = db.query(
            "SELECT uniqExactIf(user_id, day = {date_to:Date}) AS dau, "
            "uniqExactIf(user_id, day >= {d7:Date}) AS wau, uniqExact(user_id) AS mau "
            "FROM panalytics_user_days WHERE day BETWEEN {d30:Date} AND {date_to:Date}",
            params,
            timeout=query_timeout(),
        )[0]
        series = db.query(
            f"SELECT {query.period.bucket}(day) AS period, uniqExact(user_id) AS active_users "
            "FROM panalytics_user_days WHERE day BETWEEN {date_from:Date} AND {date_to:Date} "
            "GROUP BY period ORDER BY period",
            params,
            timeout=query_timeout(),
        )
        signups = db.query(
            "SELECT s.period AS period, count() AS signups, countIf(p.user_id != '') AS converted "
            f"FROM (SELECT user_id, {query.period.bucket}(toDate(min(first_ts))) AS period, "
            "        toDate(min(first_ts)) AS day "
            "      FROM panalytics_user_first WHERE event = {signup:String} GROUP BY user_id "
            "      HAVING day BETWEEN {date_from:Date} AND {date_to:Date}) AS s "
            "LEFT JOIN (SELECT user_id FROM panalytics_user_first WHERE event = {paid:String} "
            "      GROUP BY user_id HAVING toDate(min(first_ts)) <= {date_to:Date}) AS p "
            "ON p.user_id = s.user_id GROUP BY period ORDER BY period",
            params,
            timeout=query_timeout(),
        )
    total_signups = sum(r["signups"] for r in signups)
    total_converted = sum(r["converted"] for r in signups)
    for row in signups:
        row["conversion_to_paid"] = ratio(row["converted"], row["signups"])
    latest = retention(
        RetentionQuery(
            date_from=Period.MONTH.add(Period.MONTH.start_of(query.date_to), -11),
            date_to=query.date_to,
            period=Period.MONTH,
        )
    )
    by_period = {r["period"]: r for r in signups}
    table = [
        {
            "period": r["period"],
            "active_users": r["active_users"],
            "signups": by_period.get(r["period"], {}).get("signups", 0),
            "converted": by_period.get(r["period"], {}).get("converted", 0),
            "conversion_to_paid": by_period.get(r["period"], {}).get("conversion_to_paid"),
        }
        for r in series
    ]
    return {
        "period": query.period.value,
        "date_from": query.date_from.isoformat(),
        "date_to": query.date_to.isoformat(),
        "dau": active["dau"],
        "wau": active["wau"],
        "mau": active["mau"],
        "signups": total_signups,
        "converted": total_converted,
        "conversion_to_paid": ratio(total_converted, total_signups),
        "series": table,
        "retention_summary": latest["summary"],
        "retention_cohorts": len(latest["cohorts"]),
    }


# --- input


class OverviewInput(RangeInput):
    breakdowns = False

    def query(self) -> OverviewQuery:
        values = self.validated_data
        return OverviewQuery(
            date_from=values["date_from"], date_to=values["date_to"], period=values["period"]
        )


# --- page


def present_overview(request, result, params):
    series = result["series"]
    stats = [
        ("DAU", f"{result['dau']:,}", f"on {result['date_to']}"),
        ("WAU", f"{result['wau']:,}", "7 days to date_to"),
        ("MAU", f"{result['mau']:,}", "30 days to date_to"),
        ("New signups", f"{result['signups']:,}", "in the range"),
        (
            "Conversion to paid",
            percent(result["conversion_to_paid"]),
            f"{result['converted']:,} users",
        ),
    ]
    summary = result["retention_summary"]
    stats += [
        (
            f"Retention, month {k.removeprefix('period_')}",
            percent(v["average"]),
            trend_text(v["trend"]),
        )
        for k, v in summary.items()
    ]
    periods = [s["period"] for s in series]
    chart = {
        "id": "overview-activity",
        "title": "Active users and new signups",
        "table": "activity",
        "note": partial_note(result),
        "figure": {
            "data": [
                {
                    "type": "bar",
                    "name": "Active users",
                    "x": periods,
                    "y": [s["active_users"] for s in series],
                    "marker": {"color": charts.PALETTE[0]},
                },
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": "Signups",
                    "x": periods,
                    "y": [s["signups"] for s in series],
                    "yaxis": "y2",
                    "line": {"color": charts.PALETTE[2]},
                },
            ],
            "layout": {
                **charts.two_axes("active users", "signups"),
                "xaxis": charts.period_axis(result["period"], periods),
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


OVERVIEW = Analysis(
    "overview",
    "Product overview",
    OverviewInput,
    lambda params: overview(params.query()),
    present_overview,
)
page = analysis_view(OVERVIEW)
