"""Recurring revenue from subscription events, per period.

A user's MRR at a moment is the `mrr` of their latest subscription event before it
(started / upgraded / downgraded), or 0 after a cancellation or before any event; their tier
is that event's `tier`. Each period compares every user's MRR at its start and at its end:
new (0 -> x), expansion (x -> more), contraction (x -> less, not 0), churned (x -> 0), so
MRR(end) = MRR(start) + new + expansion - contraction - churned. ARPU is MRR over paying users.
Events at the same instant apply in (mrr, tier) order. Reads the subscription rollup
(migration 0012), where MRR and tier are parsed at insert.

Only a user with an event in a period can move in it, so the SQL works per event, never per
user and period: one window over each user's events keeps the last event of each (user,
period with events), whose state closes that period for the user; a second window over those
gives each the previous one's state, which opened it. Each period then returns its movements
and its changes in MRR, paying users and tier counts, and the closing figures are the running
totals of those changes (period 0 holds everything before the range). Two windows and no
grouping by user: a GROUP BY over string user ids and argMin/argMax of their states cost
half as much again on 23,000 subscription events, and so did window aggregates (argMax over
RANGE frames) in place of the second window.

A uuid the rollup holds twice (until a merge collapses it) needs no dedupe: its copies are
the same event, with the same user, time, MRR and tier, so they sort next to each other and
whichever of them is last in its period closes it with the same state. (`LIMIT 1 BY uuid`
cost 2-3 ms of 15.)

Input, selector, presenter and page of revenue.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

import charts
from analytics.product.common import (
    Period,
    RangeInput,
    map_counts,
    query_timeout,
    ratio,
)
from analytics.product.pages import (
    NO_VALUE,
    Analysis,
    Table,
    analysis_view,
    period_name,
)
from analytics.store import store
from analytics.store.cache import cache_ttl, cached


@dataclass(frozen=True)
class RevenueQuery:
    date_from: dt.date
    date_to: dt.date
    period: Period = Period.MONTH


def _revenue_sql(period: Period) -> str:
    offset = period.offset_sql("{first:Date}", "toDate(ts)")
    return f"""
SELECT j,
       sum(close_mrr - open_mrr) AS delta_mrr,
       sum(toInt64(close_mrr > 0) - toInt64(open_mrr > 0)) AS delta_paying,
       sumIf(close_mrr, open_mrr = 0 AND close_mrr > 0) AS new_mrr,
       sumIf(close_mrr - open_mrr, open_mrr > 0 AND close_mrr > open_mrr) AS expansion_mrr,
       sumIf(open_mrr - close_mrr, close_mrr > 0 AND close_mrr < open_mrr) AS contraction_mrr,
       sumIf(open_mrr, open_mrr > 0 AND close_mrr = 0) AS churned_mrr,
       -- both tiers on every row, weighted 0 when not paying: cheaper than building arrays of
       -- varying length, and sumMap leaves out the keys that sum to 0
       sumMap([open_tier, close_tier],
              [-toInt64(open_mrr > 0), toInt64(close_mrr > 0)]) AS delta_tiers
FROM (
    SELECT j, mrr AS close_mrr, tier AS close_tier,
           lagInFrame(mrr, 1, 0.) OVER g AS open_mrr,
           lagInFrame(tier, 1, '') OVER g AS open_tier
    FROM (
        SELECT user_id, j, mrr, tier, leadInFrame(j, 1, -1) OVER w AS next_j
        FROM (
            SELECT user_id, timestamp AS ts, mrr, tier,
                   if(ts < toDateTime64({{first:Date}}, 3, 'UTC'), 0, {offset} + 1) AS j
            FROM panalytics_subscriptions
            WHERE timestamp < toDateTime64({{end:Date}}, 3, 'UTC')
        )
        WINDOW w AS (PARTITION BY user_id ORDER BY ts, mrr, tier
                     ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING)
    )
    WHERE next_j != j
    WINDOW g AS (PARTITION BY user_id ORDER BY j ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
)
GROUP BY j
ORDER BY j
"""


def revenue(query: RevenueQuery) -> dict:
    return cached(
        "revenue", {"query": query}, lambda: _revenue(query), ttl=cache_ttl(query.date_to)
    )


def _revenue(query: RevenueQuery) -> dict:
    starts = query.period.starts(query.date_from, query.date_to)
    params = {
        "first": starts[0].isoformat(),
        "end": query.period.add(starts[0], len(starts)).isoformat(),
    }
    rows = {
        r["j"]: r
        for r in store().query(_revenue_sql(query.period), params, timeout=query_timeout())
    }
    # Group j holds what changed in period j (0: before the range); each period's closing
    # figures are the running totals of those changes.
    mrr, paying, by_tier = 0.0, 0, Counter()
    periods = []
    for j in range(len(starts) + 1):
        row = rows.get(j, {})
        mrr += float(row.get("delta_mrr", 0.0))
        paying += int(row.get("delta_paying", 0))
        by_tier.update(map_counts(row.get("delta_tiers", {})))
        if j == 0:
            continue
        periods.append(
            {
                "period": starts[j - 1].isoformat(),
                "mrr": round(mrr, 2),
                "new_mrr": round(float(row.get("new_mrr", 0.0)), 2),
                "expansion_mrr": round(float(row.get("expansion_mrr", 0.0)), 2),
                "contraction_mrr": round(float(row.get("contraction_mrr", 0.0)), 2),
                "churned_mrr": round(float(row.get("churned_mrr", 0.0)), 2),
                "paying_users": paying,
                "arpu": round(ratio(mrr, paying), 2) if paying else None,
                "paying_users_by_tier": {t: n for t, n in sorted(by_tier.items()) if n},
            }
        )
    has_data = any(p["mrr"] or p["churned_mrr"] for p in periods)
    return {
        "period": query.period.value,
        "date_from": query.date_from.isoformat(),
        "date_to": query.date_to.isoformat(),
        "periods": periods if has_data else [],
    }


# --- input


class RevenueInput(RangeInput):
    default_days = 365
    default_period = Period.MONTH
    breakdowns = False

    def query(self) -> RevenueQuery:
        values = self.validated_data
        return RevenueQuery(
            date_from=values["date_from"], date_to=values["date_to"], period=values["period"]
        )


# --- page


def present_revenue(request, result, params):
    p = result["periods"]
    x = [row["period"] for row in p]
    movements = [
        ("new_mrr", "New", charts.PALETTE[1], 1),
        ("expansion_mrr", "Expansion", charts.PALETTE[4], 1),
        ("contraction_mrr", "Contraction", charts.PALETTE[2], -1),
        ("churned_mrr", "Churned", charts.PALETTE[3], -1),
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
            "line": {"color": charts.PALETTE[0], "width": 3},
        }
    )
    tiers = sorted({t for row in p for t in row["paying_users_by_tier"]})
    tier_rows = [
        {"period": row["period"], **{t: row["paying_users_by_tier"].get(t, 0) for t in tiers}}
        for row in p
    ]
    panels = [
        {
            "id": "revenue-mrr",
            "title": "MRR and its movements ($)",
            "table": "mrr",
            "figure": {
                "data": data_,
                "layout": charts.layout(
                    barmode="relative",
                    yaxis={"title": "$ per month"},
                    xaxis=charts.period_axis(result["period"], x),
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
                        "marker": {"color": charts.color(i)},
                    }
                    for i, t in enumerate(tiers)
                ],
                "layout": charts.layout(
                    barmode="stack",
                    yaxis={"title": "users"},
                    xaxis=charts.period_axis(result["period"], x),
                ),
            },
        },
    ]
    last = p[-1] if p else None
    stats = []
    if last:
        name, running = period_name(result["period"], last["period"])
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
        "charts": panels,
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


REVENUE = Analysis(
    "revenue", "Revenue", RevenueInput, lambda params: revenue(params.query()), present_revenue
)
page = analysis_view(REVENUE)
