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
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from analytics.queries.common import Breakdown, Period, query_timeout, ratio
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


def _starts_sql(q: RetentionQuery) -> str:
    """(user_id, cohort, bval) rows: the users of each cohort."""
    if q.breakdown:
        bval = q.breakdown.json_sql("props")
        props = ", argMinMerge(first_props) AS props"
    else:  # the properties are only read for a breakdown
        bval, props = "''", ""
    firsts = (
        f"SELECT user_id, min(first_ts) AS first_ts{props} "
        "FROM panalytics_user_first WHERE event = {start:String} GROUP BY user_id"
    )
    if q.cohort_type is CohortType.FIRST_TIME:
        return (
            f"SELECT user_id, {q.period.bucket}(toDate(first_ts)) AS cohort, {bval} AS bval "
            f"FROM ({firsts}) "
            "WHERE toDate(first_ts) BETWEEN {date_from:Date} AND {date_to:Date}"
        )
    return (
        f"SELECT DISTINCT d.user_id AS user_id, {q.period.bucket}(d.day) AS cohort, {bval} AS bval "
        "FROM panalytics_user_days AS d "
        f"INNER JOIN ({firsts}) AS f ON f.user_id = d.user_id "
        "WHERE d.event = {start:String} AND d.day BETWEEN {date_from:Date} AND {date_to:Date}"
    )


def _active_periods_sql(q: RetentionQuery) -> str:
    """(user_id, p): the periods in which users did the return event, up to date_to. Whole
    weeks and months come from the period rollup; the period holding date_to, which may end
    after it, from active days."""
    bucket = q.period.bucket
    days = (
        f"SELECT user_id, {bucket}(day) AS p FROM panalytics_user_days "
        "WHERE event = {ret:String} AND day <= {date_to:Date} "
        f"AND day >= {{first_period:Date}} AND day >= {bucket}({{date_to:Date}})"
    )
    if q.period is Period.DAY:
        return days.replace(f" AND day >= {bucket}({{date_to:Date}})", "")
    return (
        "SELECT user_id, start AS p FROM panalytics_user_periods "
        "WHERE kind = {kind:String} AND event = {ret:String} "
        f"AND start >= {{first_period:Date}} AND start < {bucket}({{date_to:Date}}) "
        f"UNION ALL {days}"
    )


def _returns_sql(q: RetentionQuery) -> str:
    """(user_id, cohort, bval, k): the periods after its cohort in which a user returned.
    One aggregation per user over cohorts and active periods together (no join)."""
    offset = q.period.offset_sql("cohort", "p")
    return (
        "SELECT user_id, cohort, bval, k FROM ("
        "  SELECT user_id, groupUniqArrayIf(d, src = 0) AS cohorts, anyIf(bval, src = 0) AS bval,"
        "         groupUniqArrayIf(d, src = 1) AS periods"
        "  FROM ("
        f"    SELECT user_id, cohort AS d, bval, 0 AS src FROM ({_starts_sql(q)})"
        "     UNION ALL"
        f"    SELECT user_id, p AS d, '' AS bval, 1 AS src FROM ({_active_periods_sql(q)})"
        "  ) GROUP BY user_id HAVING length(cohorts) > 0"
        ") ARRAY JOIN cohorts AS cohort "
        f"ARRAY JOIN arrayMap(p -> {offset}, arrayFilter(p -> p > cohort, periods)) AS k"
    )


def _params(q: RetentionQuery) -> dict:
    params = {
        "start": q.start_event,
        "ret": q.return_event,
        "date_from": q.date_from.isoformat(),
        "date_to": q.date_to.isoformat(),
        "first_period": q.period.start_of(q.date_from).isoformat(),
        "kind": q.period.value,
    }
    if q.breakdown:
        params.update(q.breakdown.params)
    return params


def _matrix_sql(q: RetentionQuery) -> str:
    starts = (
        f"SELECT cohort, bval, count() AS n, -1 AS k FROM ({_starts_sql(q)}) GROUP BY cohort, bval"
    )
    if q.mode is Mode.ON:
        returned = (
            f"SELECT cohort, bval, uniqExact(user_id) AS n, k FROM ({_returns_sql(q)}) "
            "WHERE k <= {periods:UInt32} GROUP BY cohort, bval, k"
        )
    else:  # a histogram of each user's last period; cumulated from the end in Python
        returned = (
            "SELECT cohort, bval, count() AS n, least(k, {periods:UInt32}) AS k FROM ("
            f"  SELECT user_id, cohort, bval, max(k) AS k FROM ({_returns_sql(q)}) "
            "  GROUP BY user_id, cohort, bval"
            ") GROUP BY cohort, bval, k"
        )
    return f"{starts} UNION ALL {returned}"


def retention(q: RetentionQuery) -> dict:
    return cached("retention", {"q": q}, lambda: _retention(q), ttl=cache_ttl(q.date_to))


def _retention(q: RetentionQuery) -> dict:
    rows = store().query(
        _matrix_sql(q), {**_params(q), "periods": q.periods}, timeout=query_timeout()
    )
    last = q.period.start_of(q.date_to)
    groups: dict[tuple[str, str], dict] = {}
    for row in rows:
        if row["k"] == -1:
            cohort = dt.date.fromisoformat(row["cohort"])
            observable = min(q.periods, q.period.offset(cohort, last))
            groups[(row["cohort"], row["bval"])] = {
                "cohort": row["cohort"],
                "breakdown": row["bval"] if q.breakdown else None,
                "size": row["n"],
                "retained": [row["n"]] + [0] * observable,
                "complete": _complete(q, cohort, observable + 1),
            }
    for row in rows:
        group = groups.get((row["cohort"], row["bval"]))
        if row["k"] == -1 or group is None:
            continue
        if q.mode is Mode.ON:
            if row["k"] < len(group["retained"]):
                group["retained"][row["k"]] += row["n"]
        else:
            for k in range(1, min(row["k"], len(group["retained"]) - 1) + 1):
                group["retained"][k] += row["n"]
    cohorts = sorted(groups.values(), key=lambda g: (g["cohort"], g["breakdown"] or ""))
    return {
        "period": q.period.value,
        "start_event": q.start_event,
        "return_event": q.return_event,
        "mode": q.mode.value,
        "cohort_type": q.cohort_type.value,
        "breakdown": q.breakdown.name if q.breakdown else None,
        "periods": q.periods,
        "date_from": q.date_from.isoformat(),
        "date_to": q.date_to.isoformat(),
        "cohorts": cohorts,
        "summary": retention_summary(cohorts, periods=q.periods),
    }


def _complete(q: RetentionQuery, cohort: dt.date, listed: int) -> int:
    """How many of a cohort's `listed` periods had ended by the end of date_to."""
    p = q.period
    return sum(1 for k in range(listed) if p.last_day(p.add(cohort, k)) <= q.date_to)


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
    q: RetentionQuery,
    *,
    cohort: dt.date,
    k: int,
    breakdown_value: str | None,
    limit: int,
    offset: int,
) -> dict:
    """The users of one heatmap cell (k = 0: the whole cohort), ordered by user id."""
    params = {
        **_params(q),
        "cohort": cohort.isoformat(),
        "k": k,
        "bval": breakdown_value or "",
        "limit": limit,
        "offset": offset,
    }
    only_group = "AND bval = {bval:String}" if q.breakdown and breakdown_value is not None else ""
    if k == 0:
        inner = (
            f"SELECT user_id FROM ({_starts_sql(q)}) WHERE cohort = {{cohort:Date}} {only_group}"
        )
    else:
        having = "k = {k:UInt32}" if q.mode is Mode.ON else "k >= {k:UInt32}"
        inner = (
            f"SELECT user_id FROM ({_returns_sql(q)}) "
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
