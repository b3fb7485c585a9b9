"""Feature and video-style usage per period: events, users and share of active users.

`feature` counts `feature_used` events by their `feature` property; `video_style` counts
`video_completed` events by style. Active users of a period are users with any event in it
(from the active-days rollup). Duplicate uuids count once; buckets are UTC.

Input, selector, presenter and page of feature usage.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from rest_framework import serializers

import charts
from analytics.catalog import Event
from analytics.product.common import (
    RANGE_SQL,
    Breakdown,
    Period,
    RangeInput,
    breakdown_sql,
    query_timeout,
    range_params,
    ratio,
)
from analytics.product.pages import (
    Analysis,
    Table,
    analysis_view,
    partial_note,
    select_field,
)
from analytics.store import store
from analytics.store.cache import cache_ttl, cached

TOP_PROPERTIES = 20
# Enrichment properties every event carries: not what a PM looks for among "top properties".
_COMMON_KEYS = ("device_type", "is_mobile", "geo_country", "user_tier")


class Dimension(StrEnum):
    FEATURE = "feature"
    VIDEO_STYLE = "video_style"

    @property
    def event(self) -> str:
        return Event.FEATURE_USED if self is Dimension.FEATURE else Event.VIDEO_COMPLETED


@dataclass(frozen=True)
class UsageQuery:
    date_from: dt.date
    date_to: dt.date
    period: Period = Period.WEEK
    dimension: Dimension = Dimension.FEATURE
    breakdown: Breakdown | None = None


def feature_usage(query: UsageQuery) -> dict:
    return cached(
        "feature_usage",
        {"query": query},
        lambda: _feature_usage(query),
        ttl=cache_ttl(query.date_to),
    )


def _feature_usage(query: UsageQuery) -> dict:
    bval, bparams = breakdown_sql(query.breakdown)
    params = {
        **range_params(query.date_from, query.date_to),
        **bparams,
        "event": query.dimension.event,
        "dim": query.dimension.value,
    }
    db = store()
    with db.session():
        rows = db.query(
            f"SELECT {query.period.bucket}(toDate(timestamp)) AS period, "
            "JSONExtractString(properties, {dim:String}) AS item, "
            f"toString({bval}) AS breakdown, uniqExact(uuid) AS events, uniqExact(user_id) AS users "
            f"FROM events WHERE event = {{event:String}} AND {RANGE_SQL} "
            "GROUP BY period, item, breakdown ORDER BY period, item, breakdown",
            params,
            timeout=query_timeout(),
        )
        active = db.query(
            f"SELECT {query.period.bucket}(day) AS period, uniqExact(user_id) AS users "
            "FROM panalytics_user_days WHERE day BETWEEN {date_from:Date} AND {date_to:Date} "
            "GROUP BY period ORDER BY period",
            params,
            timeout=query_timeout(),
        )
        top = db.query(
            "SELECT kv.1 AS key, kv.2 AS value, count() AS events FROM ("
            f"  SELECT properties FROM events WHERE event = {{event:String}} AND {RANGE_SQL} "
            "  LIMIT 1 BY uuid"
            ") ARRAY JOIN JSONExtractKeysAndValues(properties, 'String') AS kv "
            "WHERE kv.1 NOT IN ({c0:String}, {c1:String}, {c2:String}, {c3:String}) "
            "AND kv.2 != '' GROUP BY key, value ORDER BY events DESC, key, value "
            f"LIMIT {TOP_PROPERTIES}",
            {**params, **{f"c{i}": k for i, k in enumerate(_COMMON_KEYS)}},
            timeout=query_timeout(),
        )
    active_by_period = {r["period"]: r["users"] for r in active}
    for row in rows:
        row["active_users"] = active_by_period.get(row["period"], 0)
        row["share_of_active"] = ratio(row["users"], row["active_users"])
        if query.breakdown is None:
            row.pop("breakdown")
    return {
        "period": query.period.value,
        "dimension": query.dimension.value,
        "breakdown": query.breakdown.name if query.breakdown else None,
        "date_from": query.date_from.isoformat(),
        "date_to": query.date_to.isoformat(),
        "rows": rows,
        "active_users": [{"period": p, "users": n} for p, n in sorted(active_by_period.items())],
        "top_properties": top,
    }


# --- input


class UsageInput(RangeInput):
    dimension = serializers.ChoiceField(
        choices=[d.value for d in Dimension], default=Dimension.FEATURE.value
    )

    def query(self) -> UsageQuery:
        values = self.validated_data
        return UsageQuery(
            date_from=values["date_from"],
            date_to=values["date_to"],
            period=values["period"],
            dimension=Dimension(values["dimension"]),
            breakdown=values["breakdown"],
        )


# --- page


def present_usage(request, result, params):
    rows = result["rows"]
    key = (
        (lambda row: f"{row['item']} · {row['breakdown']}")
        if result["breakdown"]
        else (lambda row: row["item"] or "(none)")
    )
    series: dict[str, list] = {}
    for row in rows:
        series.setdefault(key(row), []).append(row)

    def lines(value, title):
        return charts.figure(
            charts.line_series(series, x="period", y=value),
            yaxis={"title": title},
            xaxis=charts.period_axis(result["period"], [row["period"] for row in rows]),
        )

    share = lines("share_of_active", "share of active users")
    share["layout"]["yaxis"]["tickformat"] = ".0%"
    panels = [
        {
            "id": "usage-users",
            "title": f"Users of each {result['dimension'].replace('_', ' ')}",
            "table": "usage",
            "note": partial_note(result),
            "figure": lines("users", "users"),
        },
        {"id": "usage-share", "title": "Share of active users", "table": "usage", "figure": share},
    ]
    columns = [("period", "Period"), ("item", result["dimension"])]
    if result["breakdown"]:
        columns.append(("breakdown", result["breakdown"]))
    columns += [
        ("events", "Events"),
        ("users", "Users"),
        ("active_users", "Active users"),
        ("share_of_active", "Share of active"),
    ]
    return {
        "charts": panels,
        "tables": [
            Table("usage", "Usage by period", columns, rows, percent=("share_of_active",)),
            Table(
                "top_properties",
                "Top properties",
                [("key", "Property"), ("value", "Value"), ("events", "Events")],
                result["top_properties"],
            ),
        ],
        "empty": not rows,
    }


USAGE = Analysis(
    "feature_usage",
    "Feature usage",
    UsageInput,
    lambda params: feature_usage(params.query()),
    present_usage,
    extra_fields=[
        select_field("dimension", "Usage of", [x.value for x in Dimension], Dimension.FEATURE.value)
    ],
)
page = analysis_view(USAGE)
