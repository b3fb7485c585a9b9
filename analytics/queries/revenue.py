"""Recurring revenue from subscription events, per period.

A user's MRR at a moment is the `mrr` of their latest subscription event before it
(started / upgraded / downgraded), or 0 after a cancellation or before any event; their tier
is that event's `tier`. Each period compares every user's MRR at its start and at its end:
new (0 -> x), expansion (x -> more), contraction (x -> less, not 0), churned (x -> 0), so
MRR(end) = MRR(start) + new + expansion - contraction - churned. ARPU is MRR over paying users.
Events at the same instant apply in (mrr, tier) order; duplicate uuids count once.
Reads the subscription rollup (migration 0012), where MRR and tier are parsed at insert.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from analytics.queries.common import Period, cached, query_timeout, ratio
from analytics.store import store


@dataclass(frozen=True)
class RevenueQuery:
    date_from: dt.date
    date_to: dt.date
    period: Period = Period.MONTH


def _bounds_sql(period: Period) -> str:
    step = {"day": "addDays", "week": "addWeeks", "month": "addMonths"}[period.value]
    return (
        f"arrayMap(i -> toDateTime64({step}({{first:Date}}, i), 3, 'UTC'), range({{n:UInt32}} + 1))"
    )


REVENUE_SQL = """
WITH {bounds} AS bounds
SELECT p AS period_index,
       sum(close_mrr) AS mrr,
       sumIf(close_mrr, open_mrr = 0 AND close_mrr > 0) AS new_mrr,
       sumIf(close_mrr - open_mrr, open_mrr > 0 AND close_mrr > open_mrr) AS expansion_mrr,
       sumIf(open_mrr - close_mrr, close_mrr > 0 AND close_mrr < open_mrr) AS contraction_mrr,
       sumIf(open_mrr, open_mrr > 0 AND close_mrr = 0) AS churned_mrr,
       countIf(close_mrr > 0) AS paying_users,
       sumMap(if(close_mrr > 0, [close_tier], []), if(close_mrr > 0, [toUInt64(1)], [])) AS by_tier
FROM (
    SELECT user_id, p,
           arrayLast(x -> x.1 < bounds[p], hist) AS opening,
           arrayLast(x -> x.1 < bounds[p + 1], hist) AS closing,
           if(opening.1 < bounds[p], opening.2, 0) AS open_mrr,
           if(closing.1 < bounds[p + 1], closing.2, 0) AS close_mrr,
           closing.3 AS close_tier
    FROM (
        SELECT user_id, arraySort(groupArray((ts, mrr, tier))) AS hist
        FROM (
            SELECT user_id, timestamp AS ts, mrr, tier
            FROM panalytics_subscriptions
            WHERE timestamp < bounds[{n:UInt32} + 1]
            LIMIT 1 BY uuid
        )
        GROUP BY user_id
    )
    ARRAY JOIN range(1, {n:UInt32} + 1) AS p
)
GROUP BY p
ORDER BY p
"""


def revenue(q: RevenueQuery) -> dict:
    return cached("revenue", {"q": q}, q.date_to, lambda: _revenue(q))


def _revenue(q: RevenueQuery) -> dict:
    starts = q.period.starts(q.date_from, q.date_to)
    params = {"first": starts[0].isoformat(), "n": len(starts)}
    sql = REVENUE_SQL.replace("{bounds}", _bounds_sql(q.period))
    rows = {r["period_index"]: r for r in store().query(sql, params, timeout=query_timeout())}
    periods = []
    for i, start in enumerate(starts, start=1):
        row = rows.get(i, {})
        mrr = float(row.get("mrr", 0.0))
        paying = row.get("paying_users", 0)
        by_tier = row.get("by_tier", {})
        periods.append(
            {
                "period": start.isoformat(),
                "mrr": round(mrr, 2),
                "new_mrr": round(float(row.get("new_mrr", 0.0)), 2),
                "expansion_mrr": round(float(row.get("expansion_mrr", 0.0)), 2),
                "contraction_mrr": round(float(row.get("contraction_mrr", 0.0)), 2),
                "churned_mrr": round(float(row.get("churned_mrr", 0.0)), 2),
                "paying_users": paying,
                "arpu": round(ratio(mrr, paying), 2) if paying else None,
                "paying_users_by_tier": dict(sorted(_as_dict(by_tier).items())),
            }
        )
    has_data = any(p["mrr"] or p["churned_mrr"] for p in periods)
    return {
        "period": q.period.value,
        "date_from": q.date_from.isoformat(),
        "date_to": q.date_to.isoformat(),
        "periods": periods if has_data else [],
    }


def _as_dict(value) -> dict:
    # chdb's JSON gives a Map as an object; clickhouse-driver gives a dict or a (keys, values) pair
    if isinstance(value, dict):
        return {k: int(v) for k, v in value.items()}
    if isinstance(value, list | tuple) and len(value) == 2:
        return {k: int(v) for k, v in zip(value[0], value[1], strict=True)}
    return {}
