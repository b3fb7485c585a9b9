"""Satisfaction scores (1-10): distribution, trend by tier and by video style, falling users.

A user's score is "falling" when their latest score in the range is at least `min_drop`
points below their first one (ties in time: the lower score counts as earlier for "first"
and later for "latest", i.e. the conservative reading). Duplicate uuids count once.

Input, selector, presenter and page of satisfaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from rest_framework import serializers

import charts
from analytics.catalog import Event
from analytics.product.common import (
    RANGE_SQL,
    Period,
    RangeInput,
    query_timeout,
    range_params,
)
from analytics.product.pages import (
    NO_VALUE,
    Analysis,
    Table,
    analysis_view,
    text_field,
)
from analytics.store import store
from analytics.store.cache import cache_ttl, cached

FALLING_LIMIT = 200

_SCORES = (
    "SELECT user_id, timestamp, user_tier, "
    "JSONExtractString(properties, 'video_style') AS style, "
    "toFloat64(JSONExtractFloat(properties, 'score')) AS score "
    f"FROM events WHERE event = {{event:String}} AND {RANGE_SQL} LIMIT 1 BY uuid"
)


@dataclass(frozen=True)
class SatisfactionQuery:
    date_from: dt.date
    date_to: dt.date
    period: Period = Period.WEEK
    min_drop: int = 2


def satisfaction(query: SatisfactionQuery) -> dict:
    return cached(
        "satisfaction", {"query": query}, lambda: _satisfaction(query), ttl=cache_ttl(query.date_to)
    )


def _satisfaction(query: SatisfactionQuery) -> dict:
    params = {
        **range_params(query.date_from, query.date_to),
        "event": Event.SATISFACTION_SCORE.value,
        "drop": float(query.min_drop),
        "limit": FALLING_LIMIT,
    }
    db = store()
    with db.session():
        distribution = db.query(
            f"SELECT toUInt8(round(score)) AS score, count() AS responses, uniqExact(user_id) AS users "
            f"FROM ({_SCORES}) GROUP BY score ORDER BY score",
            params,
            timeout=query_timeout(),
        )

        def trend(column: str) -> list[dict]:
            return db.query(
                f"SELECT {query.period.bucket}(toDate(timestamp)) AS period, {column} AS value, "
                "round(avg(score), 4) AS average, count() AS responses "
                f"FROM ({_SCORES}) GROUP BY period, value ORDER BY period, value",
                params,
                timeout=query_timeout(),
            )

        by_tier = trend("user_tier")
        by_style = trend("style")
        falling = db.query(
            "SELECT user_id, first_score, last_score, first_score - last_score AS drop, responses, "
            "count() OVER () AS total FROM ("
            "  SELECT user_id, argMin(score, (timestamp, score)) AS first_score, "
            "         argMax(score, (timestamp, -score)) AS last_score, count() AS responses "
            f"  FROM ({_SCORES}) GROUP BY user_id HAVING responses >= 2"
            ") WHERE first_score - last_score >= {drop:Float64} "
            "ORDER BY drop DESC, user_id LIMIT {limit:UInt32}",
            params,
            timeout=query_timeout(),
        )
    total_falling = falling[0]["total"] if falling else 0
    for row in falling:
        row.pop("total")
    return {
        "period": query.period.value,
        "date_from": query.date_from.isoformat(),
        "date_to": query.date_to.isoformat(),
        "min_drop": query.min_drop,
        "distribution": distribution,
        "by_tier": by_tier,
        "by_video_style": by_style,
        "falling_users": falling,
        "falling_users_total": total_falling,
    }


# --- input


class SatisfactionInput(RangeInput):
    breakdowns = False
    min_drop = serializers.IntegerField(min_value=1, max_value=9, default=2)

    def query(self) -> SatisfactionQuery:
        values = self.validated_data
        return SatisfactionQuery(
            date_from=values["date_from"],
            date_to=values["date_to"],
            period=values["period"],
            min_drop=values["min_drop"],
        )


# --- page


def present_satisfaction(request, result, params):
    dist = result["distribution"]

    def trend(rows, title):
        groups: dict[str, list] = {}
        for row in rows:
            groups.setdefault(row["value"] or "(none)", []).append(row)
        return charts.figure(
            charts.line_series(groups, x="period", y="average"),
            yaxis={"title": title, "range": [0, 10.5]},
            xaxis=charts.period_axis(result["period"], [row["period"] for row in rows]),
        )

    panels = [
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
                        "marker": {"color": charts.PALETTE[0]},
                    }
                ],
                "layout": charts.layout(
                    xaxis={"dtick": 1, "title": "score"}, yaxis={"title": "responses"}
                ),
            },
        },
        {
            "id": "sat-tier",
            "title": "Average score by tier",
            "table": "by_tier",
            "figure": trend(result["by_tier"], "average score"),
        },
        {
            "id": "sat-style",
            "title": "Average score by video style",
            "table": "by_video_style",
            "figure": trend(result["by_video_style"], "average score"),
        },
    ]
    responses = sum(d["responses"] for d in dist)
    mean = sum(d["score"] * d["responses"] for d in dist) / responses if responses else None
    stats = [
        ("Responses", f"{responses:,}", ""),
        ("Average score", f"{mean:.2f}" if mean is not None else NO_VALUE, "1-10"),
        (
            "Users with falling scores",
            f"{result['falling_users_total']:,}",
            f"latest at least {result['min_drop']} below first",
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
        "charts": panels,
        "tables": [
            Table(
                "distribution",
                "Score distribution",
                [("score", "Score"), ("responses", "Responses"), ("users", "Users")],
                dist,
            ),
            Table("by_tier", "By tier", trend_cols, result["by_tier"]),
            Table("by_video_style", "By video style", trend_cols, result["by_video_style"]),
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
                result["falling_users"],
            ),
        ],
        "empty": not dist,
    }


SATISFACTION = Analysis(
    "satisfaction",
    "Satisfaction",
    SatisfactionInput,
    lambda params: satisfaction(params.query()),
    present_satisfaction,
    extra_fields=[text_field("min_drop", "Falling by at least", "2", size=3, kind="number")],
)
page = analysis_view(SATISFACTION)
