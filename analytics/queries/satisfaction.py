"""Satisfaction scores (1-10): distribution, trend by tier and by video style, falling users.

A user's score is "falling" when their latest score in the range is at least `min_drop`
points below their first one (ties in time: the lower score counts as earlier for "first"
and later for "latest", i.e. the conservative reading). Duplicate uuids count once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from analytics.catalog import Event
from analytics.queries.common import RANGE_SQL, Period, query_timeout, range_params
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


def satisfaction(q: SatisfactionQuery) -> dict:
    return cached("satisfaction", {"q": q}, lambda: _satisfaction(q), ttl=cache_ttl(q.date_to))


def _satisfaction(q: SatisfactionQuery) -> dict:
    params = {
        **range_params(q.date_from, q.date_to),
        "event": Event.SATISFACTION_SCORE.value,
        "drop": float(q.min_drop),
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
                f"SELECT {q.period.bucket}(toDate(timestamp)) AS period, {column} AS value, "
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
        "period": q.period.value,
        "date_from": q.date_from.isoformat(),
        "date_to": q.date_to.isoformat(),
        "min_drop": q.min_drop,
        "distribution": distribution,
        "by_tier": by_tier,
        "by_video_style": by_style,
        "falling_users": falling,
        "falling_users_total": total_falling,
    }
