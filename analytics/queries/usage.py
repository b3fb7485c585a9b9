"""Feature and video-style usage per period: events, users and share of active users.

`feature` counts `feature_used` events by their `feature` property; `video_style` counts
`video_completed` events by style. Active users of a period are users with any event in it
(from the active-days rollup). Duplicate uuids count once; buckets are UTC.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from analytics.catalog import Event
from analytics.queries.common import (
    RANGE_SQL,
    Breakdown,
    Period,
    breakdown_sql,
    query_timeout,
    range_params,
    ratio,
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


def feature_usage(q: UsageQuery) -> dict:
    return cached("feature_usage", {"q": q}, lambda: _feature_usage(q), ttl=cache_ttl(q.date_to))


def _feature_usage(q: UsageQuery) -> dict:
    bval, bparams = breakdown_sql(q.breakdown)
    params = {
        **range_params(q.date_from, q.date_to),
        **bparams,
        "event": q.dimension.event,
        "dim": q.dimension.value,
    }
    db = store()
    with db.session():
        rows = db.query(
            f"SELECT {q.period.bucket}(toDate(timestamp)) AS period, "
            "JSONExtractString(properties, {dim:String}) AS item, "
            f"toString({bval}) AS breakdown, uniqExact(uuid) AS events, uniqExact(user_id) AS users "
            f"FROM events WHERE event = {{event:String}} AND {RANGE_SQL} "
            "GROUP BY period, item, breakdown ORDER BY period, item, breakdown",
            params,
            timeout=query_timeout(),
        )
        active = db.query(
            f"SELECT {q.period.bucket}(day) AS period, uniqExact(user_id) AS users "
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
        if q.breakdown is None:
            row.pop("breakdown")
    return {
        "period": q.period.value,
        "dimension": q.dimension.value,
        "breakdown": q.breakdown.name if q.breakdown else None,
        "date_from": q.date_from.isoformat(),
        "date_to": q.date_to.isoformat(),
        "rows": rows,
        "active_users": [{"period": p, "users": n} for p, n in sorted(active_by_period.items())],
        "top_properties": top,
    }
