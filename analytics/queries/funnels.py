"""Ordered funnels, one pass per user: over each user's event times (a rollup) when that
answers the funnel, otherwise over raw events with arrayFold.

Each user enters at their first event in [date_from, date_to] matching step 1 (for `any`
order: matching any step), and every later step must happen within `window_days` of entry.
- sequential: steps in order; other events in between are allowed;
- strict: as sequential, but an event matching a step beyond the next one (and no step
  already reached) ends the user's attempt;
- any: the steps in any order; each event completes at most one step (the lowest matching).
Events are taken in time order (ties: by the bitmask of steps they match, then breakdown
value); duplicate uuids count once. Time to convert for step k is the time from step k-1.
A breakdown splits users by the property on their entry event. The trend is conversion over
time: for each period of the range, the users who entered in it and those of them who reached
the last step (its last periods are young: their users may still convert within the window).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from analytics.queries.common import (
    Breakdown,
    Period,
    breakdown_sql,
    query_timeout,
    ratio,
)
from analytics.store import store
from analytics.store.cache import cache_ttl, cached

MAX_STEPS = 10
# Upper bounds (seconds) of the time-to-convert histogram; the last bucket is open.
TIME_BUCKETS = (
    ("< 1 min", 60),
    ("1-10 min", 600),
    ("10-60 min", 3600),
    ("1-6 h", 6 * 3600),
    ("6-24 h", 86400),
    ("1-3 days", 3 * 86400),
    ("3-7 days", 7 * 86400),
    ("7+ days", None),
)


class Order(StrEnum):
    SEQUENTIAL = "sequential"
    STRICT = "strict"
    ANY = "any"


@dataclass(frozen=True)
class Step:
    event: str
    property_key: str = ""
    property_value: str = ""

    @property
    def label(self) -> str:
        if self.property_key:
            return f"{self.event} ({self.property_key}={self.property_value})"
        return self.event


@dataclass(frozen=True)
class FunnelQuery:
    steps: tuple[Step, ...]
    date_from: dt.date
    date_to: dt.date
    window_days: int = 14
    order: Order = Order.SEQUENTIAL
    breakdown: Breakdown | None = None
    period: Period = Period.WEEK  # of the trend


def _step_condition(i: int, step: Step) -> str:
    condition = f"event = {{s{i}:String}}"
    if step.property_key:
        condition += f" AND JSONExtractString(properties, {{pk{i}:String}}) = {{pv{i}:String}}"
    return condition


def _fold_sql(order: Order, n: int) -> str:
    """The per-user fold over sorted (ts, mask, bval) into (level, times, stopped, done, bval)."""
    full = (1 << n) - 1
    in_window = "(x.1 - acc.2[1] <= {window:Float64})"
    entry_range = "(x.1 >= {entry_from:Float64} AND x.1 < {entry_end:Float64})"
    if order is Order.ANY:
        low = "bitAnd(bitAnd(x.2, bitNot(acc.4)), bitNot(bitAnd(x.2, bitNot(acc.4))) + 1)"
        step = (
            f"if(acc.1 = 0, if(x.2 != 0 AND {entry_range}, "
            f"(toUInt8(1), [x.1], toUInt8(0), toUInt16(bitAnd(x.2, bitNot(x.2) + 1)), x.3), acc), "
            f"if(acc.4 != {full} AND bitAnd(x.2, bitNot(acc.4)) != 0 AND {in_window}, "
            f"(toUInt8(acc.1 + 1), arrayPushBack(acc.2, x.1), acc.3, toUInt16(bitOr(acc.4, {low})), acc.5), acc))"
        )
    else:
        advance = (
            "(toUInt8(acc.1 + 1), arrayPushBack(acc.2, x.1), acc.3, "
            "toUInt16(bitOr(acc.4, bitShiftLeft(toUInt16(1), acc.1))), acc.5)"
        )
        if order is Order.STRICT:
            reached = "bitAnd(x.2, bitShiftLeft(toUInt16(1), acc.1) - 1) != 0"
            stop = "(acc.1, acc.2, toUInt8(1), acc.4, acc.5)"
            later = f"if(x.2 != 0 AND NOT ({reached}), {stop}, acc)"
        else:
            later = "acc"
        step = (
            f"if(acc.1 = 0, if(bitTest(x.2, 0) AND {entry_range}, "
            "(toUInt8(1), [x.1], toUInt8(0), toUInt16(1), x.3), acc), "
            f"if(acc.3 = 0 AND acc.1 < {n} AND {in_window}, "
            f"if(bitTest(x.2, acc.1), {advance}, {later}), acc))"
        )
    init = "(toUInt8(0), CAST([], 'Array(Float64)'), toUInt8(0), toUInt16(0), '')"
    return f"arrayFold((acc, x) -> {step}, events, {init})"


def per_user_sql(q: FunnelQuery) -> str:
    """One row per user who entered: user_id, level (steps reached), times (seconds), bval."""
    return _rollup_sql(q) if rollup_serves(q) else _fold_sql_per_user(q)


def rollup_serves(q: FunnelQuery) -> bool:
    """Whether each user's distinct event times (migration 0012) answer this funnel: in a
    sequential funnel over distinct events without filters, step k is simply the earliest
    step-k time at or after step k-1 (a tie sorts after it, as in the fold), and neither
    repeated times nor anything but the times matter. Other funnels fold the raw events."""
    events = [s.event for s in q.steps]
    return (
        q.order is Order.SEQUENTIAL
        and q.breakdown is None
        and not any(s.property_key for s in q.steps)
        and len(set(events)) == len(events)
    )


def _rollup_sql(q: FunnelQuery) -> str:
    n = len(q.steps)
    arrays = ", ".join(
        f"arrayMap(t -> toUnixTimestamp64Milli(t) / 1000.0, "
        f"groupArrayArrayIf(times, event = {{s{i}:String}})) AS a{i}"
        for i in range(n)
    )
    names = ", ".join(f"{{s{i}:String}}" for i in range(n))
    # f_k: the step-k candidates; t_k their earliest; r_k whether steps 1..k were all reached
    chain = [
        "arrayFilter(t -> t >= {entry_from:Float64} AND t < {entry_end:Float64}, a0) AS f1",
        "notEmpty(f1) AS r1",
        "arrayMin(f1) AS t1",
    ]
    for k in range(2, n + 1):
        chain += [
            f"arrayFilter(t -> t >= t{k - 1} AND t - t1 <= {{window:Float64}}, a{k - 1}) AS f{k}",
            f"r{k - 1} AND notEmpty(f{k}) AS r{k}",
            f"arrayMin(f{k}) AS t{k}",
        ]
    level = " + ".join(f"r{k}" for k in range(1, n + 1))
    times = ", ".join(f"t{k}" for k in range(1, n + 1))
    return (
        f"SELECT user_id, toUInt8({level}) AS level, arraySlice([{times}], 1, level) AS times, "
        f"'' AS bval, {', '.join(chain)} FROM ("
        f"  SELECT user_id, {arrays} FROM panalytics_user_event_times "
        f"  WHERE event IN ({names}) GROUP BY user_id"
        ") WHERE level > 0"
    )


def _fold_sql_per_user(q: FunnelQuery) -> str:
    n = len(q.steps)
    mask = " + ".join(f"if({_step_condition(i, s)}, {1 << i}, 0)" for i, s in enumerate(q.steps))
    bval, _ = breakdown_sql(q.breakdown)
    return (
        "SELECT user_id, r.1 AS level, r.2 AS times, r.5 AS bval FROM ("
        f"  SELECT user_id, {_fold_sql(q.order, n)} AS r FROM ("
        "    SELECT user_id, arraySort(arrayMap(e -> (e.2, e.3, e.4), groupUniqArray("
        f"      (uuid, toUnixTimestamp64Milli(timestamp) / 1000.0, toUInt16({mask}), toString({bval}))"
        "    ))) AS events FROM events "
        f"    WHERE {_source_filter(q)} "
        "    GROUP BY user_id"
        "  )"
        ") WHERE level > 0"
    )


def _params(q: FunnelQuery) -> dict:
    entry_from = dt.datetime.combine(q.date_from, dt.time(), dt.UTC).timestamp()
    entry_end = dt.datetime.combine(q.date_to + dt.timedelta(days=1), dt.time(), dt.UTC).timestamp()
    window = q.window_days * 86400.0
    params = {
        "first": q.period.start_of(q.date_from).isoformat(),
        "entry_from": entry_from,
        "entry_end": entry_end,
        "window": window,
        "ts_from": dt.datetime.fromtimestamp(entry_from, dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "ts_end": dt.datetime.fromtimestamp(entry_end + window + 1, dt.UTC).strftime(
            "%Y-%m-%d %H:%M:%S"
        ),
    }
    for i, s in enumerate(q.steps):
        params[f"s{i}"] = s.event
        if s.property_key:
            params[f"pk{i}"] = s.property_key
            params[f"pv{i}"] = s.property_value
    if q.breakdown:
        params.update(q.breakdown.params)
    return params


def _source_filter(q: FunnelQuery) -> str:
    names = " OR ".join(f"event = {{s{i}:String}}" for i in range(len(q.steps)))
    return (
        f"({names}) AND timestamp >= toDateTime64({{ts_from:String}}, 3, 'UTC') "
        "AND timestamp < toDateTime64({ts_end:String}, 3, 'UTC')"
    )


def funnel(q: FunnelQuery) -> dict:
    return cached("funnel", {"q": q}, lambda: _funnel(q), ttl=cache_ttl(q.date_to))


def _funnel(q: FunnelQuery) -> dict:
    n = len(q.steps)
    counts = ", ".join(f"countIf(level >= {k}) AS c{k}" for k in range(1, n + 1))
    medians = ", ".join(
        f"quantileExactInclusiveIf(0.5)(times[{k}] - times[{k - 1}], level >= {k}) AS m{k}"
        for k in range(2, n + 1)
    )
    buckets, low = [], 0
    total = "times[length(times)] - times[1]"
    for i, (_label, high) in enumerate(TIME_BUCKETS):
        upper = f" AND {total} < {high}" if high is not None else ""
        buckets.append(f"countIf(level = {n} AND {total} >= {low}{upper}) AS h{i}")
        low = high or low
    # the trend: users by the period of their entry (its index in the range, which every
    # entry lies in), and those who reached the last step; -Resample fills a dense array per
    # group, half the cost of sumMap over dates
    periods = len(q.period.starts(q.date_from, q.date_to))
    entry = q.period.offset_sql(
        "{first:Date}", "toDate(toDateTime(toInt64(floor(times[1])), 'UTC'))"
    )
    trend = (
        f"countResample(0, {periods}, 1)({entry}) AS entered_by, "
        f"sumResample(0, {periods}, 1)(toUInt64(level = {n}), {entry}) AS converted_by"
    )
    # with a breakdown, one more grouping set gives the totals over all groups
    grouping = "GROUPING SETS ((bval), ())" if q.breakdown else "bval"
    sql = (
        f"SELECT bval, grouping(bval) AS is_total, {counts}{', ' + medians if medians else ''}, "
        f"{', '.join(buckets)}, {trend} FROM ({per_user_sql(q)}) "
        f"GROUP BY {grouping} ORDER BY is_total, bval"
    )
    rows = store().query(sql, _params(q), timeout=query_timeout())
    if q.breakdown is None:
        return {**_meta(q), **_group(q, rows[0] if rows else {})}
    total = next((r for r in rows if r["is_total"]), {})
    groups = [_group(q, row) for row in rows if not row["is_total"]]
    return {**_meta(q), **_group(q, total), "breakdowns": groups}


def _group(q: FunnelQuery, row: dict) -> dict:
    steps = []
    start = row.get("c1", 0)
    for k, s in enumerate(q.steps, start=1):
        count = row.get(f"c{k}", 0)
        previous = row.get(f"c{k - 1}", 0) if k > 1 else count
        median = row.get(f"m{k}") if k > 1 and count else None
        steps.append(
            {
                "event": s.event,
                "label": s.label,
                "count": count,
                "conversion_from_start": ratio(count, start),
                "conversion_from_previous": ratio(count, previous),
                "dropped": (previous - count) if k > 1 else 0,
                "median_seconds_to_convert": round(median, 3) if median is not None else None,
            }
        )
    distribution = [
        {"bucket": label, "users": row.get(f"h{i}", 0)}
        for i, (label, _h) in enumerate(TIME_BUCKETS)
    ]
    starts = q.period.starts(q.date_from, q.date_to)
    entered = row.get("entered_by") or [0] * len(starts)
    converted = row.get("converted_by") or [0] * len(starts)
    trend = [
        {"period": start.isoformat(), "entered": e, "converted": c, "conversion": ratio(c, e)}
        for start, e, c in zip(starts, entered, converted, strict=True)
    ]
    result = {"steps": steps, "time_to_convert": distribution, "trend": trend}
    if q.breakdown is not None and "bval" in row and not row["is_total"]:
        result["breakdown"] = row["bval"]
    return result


def _meta(q: FunnelQuery) -> dict:
    return {
        "order": q.order.value,
        "window_days": q.window_days,
        "period": q.period.value,
        "date_from": q.date_from.isoformat(),
        "date_to": q.date_to.isoformat(),
        "breakdown_by": q.breakdown.name if q.breakdown else None,
    }


def funnel_dropped_users(q: FunnelQuery, *, step: int, limit: int, offset: int) -> dict:
    """Users who reached step-1 but not `step` (1-based, >= 2), ordered by user id."""
    sql = (
        "SELECT user_id, count() OVER () AS total FROM ("
        f"{per_user_sql(q)}) WHERE level = {{reached:UInt8}} "
        "ORDER BY user_id LIMIT {limit:UInt32} OFFSET {offset:UInt32}"
    )
    params = {**_params(q), "reached": step - 1, "limit": limit, "offset": offset}
    rows = store().query(sql, params, timeout=query_timeout())
    total = rows[0]["total"] if rows else 0
    if not rows and offset:
        count = store().query(
            f"SELECT count() AS n FROM ({per_user_sql(q)}) WHERE level = {{reached:UInt8}}",
            params,
            timeout=query_timeout(),
        )
        total = count[0]["n"]
    return {"total": total, "users": [r["user_id"] for r in rows]}
