"""Lifecycle and stickiness of one event, from the per-user rollups (first time, active days).

Lifecycle: for each period P in the range, every user who did the event in P is
- new: their first-ever such event is in P;
- returning: not new, and they did it in the period before P;
- resurrecting: not new, not in the period before, so at some earlier time;
and every user who did it in the period before P but not in P is dormant (shown negative).
Stickiness: for each week (Monday, UTC) in the range, users by the number of distinct days
(1-7) of that week they did the event; a week the range cuts counts only its days in range.

Input, selectors, presenters and pages of both.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from rest_framework import serializers

import charts
from analytics.product.common import (
    InCohortInput,
    Period,
    RangeInput,
    UserFilter,
    event_field,
    query_timeout,
)
from analytics.product.pages import Analysis, Table, analysis_view, partial_note, text_field
from analytics.store import store
from analytics.store.cache import cache_ttl, cached

STATUSES = ("new", "returning", "resurrecting", "dormant")


@dataclass(frozen=True)
class LifecycleQuery:
    event: str
    date_from: dt.date
    date_to: dt.date
    period: Period = Period.WEEK
    user_filter: UserFilter | None = None


def _users_sql(query) -> tuple[str, dict]:
    if query.user_filter is None:
        return "", {}
    return " AND " + query.user_filter.sql("user_id"), query.user_filter.params


def lifecycle(query: LifecycleQuery) -> dict:
    return cached(
        "lifecycle", {"query": query}, lambda: _lifecycle(query), ttl=cache_ttl(query.date_to)
    )


def _lifecycle(query: LifecycleQuery) -> dict:
    p = query.period
    starts = p.starts(query.date_from, query.date_to)
    before = p.add(starts[0], -1)
    users, uparams = _users_sql(query)
    offset = p.offset_sql("{first:Date}", f"{p.bucket}(day)")
    first_offset = p.offset_sql("{first:Date}", f"{p.bucket}(toDate(first_ts))")
    # per user: the periods (index from the range's first; -1 the one before) they were
    # active in, and the index of their first-ever event's period
    sql = (
        "SELECT status, idx, count() AS users FROM ("
        "  SELECT user_id, act, fo, arrayConcat("
        "    arrayMap(i -> (if(fo = i, 'new', if(has(act, i - 1), 'returning', 'resurrecting')), i),"
        "      arrayFilter(i -> i >= 0, act)),"
        "    arrayMap(i -> ('dormant', i + 1),"
        "      arrayFilter(i -> i + 1 < {n:Int32} AND NOT has(act, i + 1), act))"
        "  ) AS marks FROM ("
        f"    SELECT user_id, groupUniqArray(toInt32({offset})) AS act "
        "    FROM panalytics_user_days WHERE event = {event:String} "
        f"    AND day >= {{before:Date}} AND day <= {{date_to:Date}}{users} GROUP BY user_id"
        "  ) AS a INNER JOIN ("
        f"    SELECT user_id, toInt32({first_offset}) AS fo FROM ("
        "      SELECT user_id, min(first_ts) AS first_ts FROM panalytics_user_first "
        f"      WHERE event = {{event:String}}{users} GROUP BY user_id)"
        "  ) AS f USING user_id"
        ") ARRAY JOIN marks.1 AS status, marks.2 AS idx GROUP BY status, idx"
    )
    params = {
        "event": query.event,
        "first": starts[0].isoformat(),
        "before": before.isoformat(),
        "date_to": query.date_to.isoformat(),
        "n": len(starts),
        **uparams,
    }
    rows = store().query(sql, params, timeout=query_timeout())
    counts = {(r["status"], int(r["idx"])): int(r["users"]) for r in rows}
    return {
        "event": query.event,
        "period": p.value,
        "date_from": query.date_from.isoformat(),
        "date_to": query.date_to.isoformat(),
        "periods": [
            {
                "period": s.isoformat(),
                **{
                    status: (-1 if status == "dormant" else 1) * counts.get((status, i), 0)
                    for status in STATUSES
                },
            }
            for i, s in enumerate(starts)
        ],
    }


@dataclass(frozen=True)
class StickinessQuery:
    event: str
    date_from: dt.date
    date_to: dt.date
    user_filter: UserFilter | None = None


def stickiness(query: StickinessQuery) -> dict:
    return cached(
        "stickiness", {"query": query}, lambda: _stickiness(query), ttl=cache_ttl(query.date_to)
    )


def _stickiness(query: StickinessQuery) -> dict:
    users, uparams = _users_sql(query)
    starts = Period.WEEK.starts(query.date_from, query.date_to)
    sql = (
        "SELECT week, days, count() AS users FROM ("
        "  SELECT user_id, toMonday(day) AS week, uniqExact(day) AS days "
        "  FROM panalytics_user_days WHERE event = {event:String} "
        f"  AND day >= {{date_from:Date}} AND day <= {{date_to:Date}}{users} "
        "  GROUP BY user_id, week"
        ") GROUP BY week, days"
    )
    params = {
        "event": query.event,
        "date_from": query.date_from.isoformat(),
        "date_to": query.date_to.isoformat(),
        **uparams,
    }
    rows = store().query(sql, params, timeout=query_timeout())
    counts = {(str(r["week"]), int(r["days"])): int(r["users"]) for r in rows}
    weeks = []
    for s in starts:
        by_days = [counts.get((s.isoformat(), d), 0) for d in range(1, 8)]
        weeks.append({"week": s.isoformat(), "users": sum(by_days), "by_days": by_days})
    total = [sum(w["by_days"][d] for w in weeks) for d in range(7)]
    return {
        "event": query.event,
        "period": "week",
        "date_from": query.date_from.isoformat(),
        "date_to": query.date_to.isoformat(),
        "weeks": weeks,
        "by_days": total,
    }


# --- input


class LifecycleInput(RangeInput, InCohortInput):
    breakdowns = False
    event = event_field("session_start")

    def query(self, *, user_filter: UserFilter | None = None) -> LifecycleQuery:
        v = self.validated_data
        users = user_filter or v.get("in_cohort")
        return LifecycleQuery(v["event"], v["date_from"], v["date_to"], v["period"], users)


class StickinessInput(RangeInput, InCohortInput):
    breakdowns = False
    default_days = 56
    event = event_field("session_start")
    period = serializers.ChoiceField(
        choices=[Period.WEEK.value], required=False, help_text="stickiness counts days per week"
    )

    def query(self, *, user_filter: UserFilter | None = None) -> StickinessQuery:
        v = self.validated_data
        users = user_filter or v.get("in_cohort")
        return StickinessQuery(v["event"], v["date_from"], v["date_to"], users)


# --- pages

_STATUS_COLORS = {"new": 0, "returning": 1, "resurrecting": 2, "dormant": 3}


def present_lifecycle(request, result, params):
    periods = result["periods"]
    x = [r["period"] for r in periods]
    bars = [
        {
            "type": "bar",
            "name": status,
            "x": x,
            "y": [r[status] for r in periods],
            "marker": {"color": charts.color(_STATUS_COLORS[status])},
        }
        for status in STATUSES
    ]
    layout = charts.layout(barmode="relative", yaxis={"title": "users"})
    layout["xaxis"] = charts.period_axis(result["period"], x)
    columns = [("period", result["period"].capitalize())] + [(s, s.capitalize()) for s in STATUSES]
    return {
        "charts": [
            {
                "id": "lifecycle",
                "wide": True,
                "title": f"Users doing {result['event']}: new, returning, resurrecting, dormant",
                "table": "lifecycle",
                "note": partial_note(result),
                "figure": {"data": bars, "layout": layout},
            }
        ],
        "tables": [Table("lifecycle", "Lifecycle", columns, periods)],
        "empty": not any(r[s] for r in periods for s in STATUSES),
    }


def present_stickiness(request, result, params):
    days = list(range(1, 8))
    bar = {
        "type": "bar",
        "name": "users",
        "x": [f"{d} day{'s' if d > 1 else ''}" for d in days],
        "y": result["by_days"],
        "marker": {"color": charts.color(0)},
    }
    rows = [
        {"week": w["week"], "users": w["users"], **{f"d{d}": w["by_days"][d - 1] for d in days}}
        for w in result["weeks"]
    ]
    columns = [("week", "Week"), ("users", "Users")] + [(f"d{d}", f"{d} d") for d in days]
    return {
        "charts": [
            {
                "id": "stickiness",
                "wide": True,
                "title": f"Days per week users did {result['event']} (all weeks of the range)",
                "table": "stickiness",
                "figure": {
                    "data": [bar],
                    "layout": charts.layout(yaxis={"title": "user-weeks"}),
                },
            }
        ],
        "tables": [Table("stickiness", "Stickiness by week", columns, rows)],
        "empty": not any(result["by_days"]),
    }


LIFECYCLE = Analysis(
    "lifecycle",
    "Lifecycle",
    LifecycleInput,
    lambda params: lifecycle(params.query()),
    present_lifecycle,
    extra_fields=[text_field("event", "Event", "session_start", size=20)],
)
STICKINESS = Analysis(
    "stickiness",
    "Stickiness",
    StickinessInput,
    lambda params: stickiness(params.query()),
    present_stickiness,
    extra_fields=[text_field("event", "Event", "session_start", size=20)],
)
lifecycle_page = analysis_view(LIFECYCLE)
stickiness_page = analysis_view(STICKINESS)
