"""Ordered funnels, one pass per user: over each user's event times (a rollup) when that
answers the funnel, otherwise over raw events with arrayFold.

Each user enters at their first event in [date_from, date_to] matching step 1 (for `any`
order: matching any step), and every later step must happen within `window_days` of entry
and, in an ordered funnel, within its own window (`step_windows`) after the step before it:
step k is the earliest step-k event after step k-1, so a user whose next step-k event comes
later than step k's window stops at step k-1. With a window for every step, `window_days`
may be left out (no overall window).
- sequential: steps in order; other events in between are allowed;
- strict: as sequential, but an event matching a step beyond the next one (and no step
  already reached) ends the user's attempt;
- any: the steps in any order; each event completes at most one step (the lowest matching).
Events are taken in time order (ties: by the bitmask of steps they match, then breakdown
value); duplicate uuids count once. Time to convert for step k is the time from step k-1.
Exclusions (as PostHog's): a user who did an excluded event after reaching step i and before
reaching step j (strictly between their times; if they never reach step j, while their attempt
could still advance: within the windows of entry and of their next step) is dropped from the
funnel altogether, every step included. An exclusion's event may not be a step's event; at
equal times a step counts before an exclusion.
A breakdown splits users by the property on their entry event. The trend is conversion over
time: for each period of the range, the users who entered in it and those of them who reached
the last step (its last periods are young: their users may still convert within the window).

Input, selector, presenter and pages of funnels and the users who dropped.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum

from django.urls import reverse
from rest_framework import serializers

import charts
from analytics.cohorts.selectors import CohortFilter
from analytics.product.common import (
    EVENT_NAME,
    Breakdown,
    InCohortInput,
    PageInput,
    Period,
    RangeInput,
    breakdown_sql,
    page_window,
    query_timeout,
    ratio,
)
from analytics.product.pages import (
    Analysis,
    Table,
    analysis_view,
    duration_text,
    percent,
    query_string,
    select_field,
    text_field,
    users_panel,
)
from analytics.store import store
from analytics.store.cache import cache_ttl, cached
from core.errors import UNPROCESSABLE

MAX_STEPS = 10
MAX_EXCLUSIONS = 5
NO_WINDOW = 1e15  # seconds: a step without a window of its own
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
class Exclusion:
    """Users who did `event` between step `from_step` and step `to_step` (1-based) drop out."""

    event: str
    from_step: int
    to_step: int

    @property
    def label(self) -> str:
        return f"{self.event} between steps {self.from_step} and {self.to_step}"


@dataclass(frozen=True)
class FunnelQuery:
    steps: tuple[Step, ...]
    date_from: dt.date
    date_to: dt.date
    window_days: int | None = 14  # None: only the steps' own windows
    order: Order = Order.SEQUENTIAL
    breakdown: Breakdown | None = None
    period: Period = Period.WEEK  # of the trend
    in_cohort: CohortFilter | None = None
    exclusions: tuple[Exclusion, ...] = ()
    # seconds each step k >= 2 may take after step k-1 (None: no window of its own); empty:
    # none has one
    step_windows: tuple[float | None, ...] = ()

    @property
    def window_seconds(self) -> float:
        """The overall window: without `window_days`, the steps' windows end to end."""
        if self.window_days is not None:
            return self.window_days * 86400.0
        return float(sum(w or 0 for w in self.step_windows))

    @property
    def own_windows(self) -> bool:
        return any(w is not None for w in self.step_windows)


def _step_condition(i: int, step: Step) -> str:
    condition = f"event = {{s{i}:String}}"
    if step.property_key:
        condition += f" AND JSONExtractString(properties, {{pk{i}:String}}) = {{pv{i}:String}}"
    return condition


def _fold_sql(order: Order, n: int, *, exclusions=(), step_windows: bool = False) -> str:
    """The per-user fold over sorted (ts, mask, bval) into (level, times, stopped, done, bval).
    Bits 0..n-1 of the mask are the steps an event matches, bits n.. the exclusions; stopped
    is 1 for a strict funnel's stop and 2 for a user an exclusion drops."""
    full = (1 << n) - 1
    in_window = "(x.1 - acc.2[1] <= {window:Float64})"
    if step_windows:  # and within the next step's own window after the last step reached
        in_window = (
            "(x.1 - acc.2[1] <= {window:Float64} "
            "AND x.1 - acc.2[acc.1] <= {step_windows:Array(Float64)}[acc.1 + 1])"
        )
    entry_range = "(x.1 >= {entry_from:Float64} AND x.1 < {entry_end:Float64})"
    if order is Order.ANY:
        low = "bitAnd(bitAnd(x.2, bitNot(acc.4)), bitNot(bitAnd(x.2, bitNot(acc.4))) + 1)"
        step = (
            f"if(acc.1 = 0, if(x.2 != 0 AND {entry_range}, "
            f"(toUInt8(1), [x.1], toUInt8(0), toUInt16(bitAnd(x.2, bitNot(x.2) + 1)), x.3), acc), "
            f"if(acc.3 = 0 AND acc.4 != {full} AND bitAnd(x.2, bitNot(acc.4)) != 0 AND {in_window}, "
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
    if exclusions:
        step = step.replace("x.2", f"bitAnd(x.2, {full})")  # the steps see only their bits
        hits = " OR ".join(
            f"(bitTest(x.2, {n + e}) AND acc.1 >= {x.from_step} AND acc.1 < {x.to_step} "
            f"AND x.1 > acc.2[{x.from_step}])"
            for e, x in enumerate(exclusions)
        )
        drop = "(acc.1, acc.2, toUInt8(2), acc.4, acc.5)"
        step = f"if(acc.1 > 0 AND acc.3 = 0 AND ({hits}) AND {in_window}, {drop}, {step})"
    init = "(toUInt8(0), CAST([], 'Array(Float64)'), toUInt8(0), toUInt16(0), '')"
    return f"arrayFold((acc, x) -> {step}, events, {init})"


def per_user_sql(query: FunnelQuery) -> str:
    """One row per user who entered: user_id, level (steps reached), times (seconds), bval."""
    return _rollup_sql(query) if rollup_serves(query) else _fold_sql_per_user(query)


def rollup_serves(query: FunnelQuery) -> bool:
    """Whether each user's distinct event times (migration 0012) answer this funnel: in a
    sequential funnel over distinct events without filters, step k is simply the earliest
    step-k time at or after step k-1 (a tie sorts after it, as in the fold), and neither
    repeated times nor anything but the times matter. Other funnels fold the raw events."""
    events = [s.event for s in query.steps]
    return (
        query.order is Order.SEQUENTIAL
        and query.breakdown is None
        and not any(s.property_key for s in query.steps)
        and len(set(events)) == len(events)
    )


def _rollup_sql(query: FunnelQuery) -> str:
    n = len(query.steps)
    arrays = ", ".join(
        f"arrayMap(t -> toUnixTimestamp64Milli(t) / 1000.0, "
        f"groupArrayArrayIf(times, event = {{s{i}:String}})) AS a{i}"
        for i in range(n)
    )
    arrays += "".join(
        f", arrayMap(t -> toUnixTimestamp64Milli(t) / 1000.0, "
        f"groupArrayArrayIf(times, event = {{x{e}:String}})) AS b{e}"
        for e in range(len(query.exclusions))
    )
    names = ", ".join(
        [f"{{s{i}:String}}" for i in range(n)]
        + [f"{{x{e}:String}}" for e in range(len(query.exclusions))]
    )
    # f_k: the step-k candidates; t_k their earliest; r_k whether steps 1..k were all reached
    chain = [
        "arrayFilter(t -> t >= {entry_from:Float64} AND t < {entry_end:Float64}, a0) AS f1",
        "notEmpty(f1) AS r1",
        "arrayMin(f1) AS t1",
    ]
    for k in range(2, n + 1):
        chain += [
            f"arrayFilter(t -> t >= t{k - 1} AND t - t1 <= {{window:Float64}}"
            + (f" AND t - t{k - 1} <= {{sw{k}:Float64}}" if _own_window(query, k) else "")
            + f", a{k - 1}) AS f{k}",
            f"r{k - 1} AND notEmpty(f{k}) AS r{k}",
            f"arrayMin(f{k}) AS t{k}",
        ]
    level = " + ".join(f"r{k}" for k in range(1, n + 1))
    times = ", ".join(f"t{k}" for k in range(1, n + 1))
    # an exclusion event strictly after step i and before step j, or, with step j not
    # reached, while the attempt could still advance (as the fold decides event by event)
    live = "t - t1 <= {window:Float64}"
    if query.own_windows:
        live += (
            f" AND t - arrayElement([{times}], level) <= {{step_windows:Array(Float64)}}[level + 1]"
        )
    excluded = " OR ".join(
        f"(r{x.from_step} AND arrayExists(t -> t > t{x.from_step} AND "
        f"if(r{x.to_step}, t < t{x.to_step}, {live}), b{e}))"
        for e, x in enumerate(query.exclusions)
    )
    return (
        f"SELECT user_id, toUInt8({level}) AS level, arraySlice([{times}], 1, level) AS times, "
        f"'' AS bval, {', '.join(chain)} FROM ("
        f"  SELECT user_id, {arrays} FROM panalytics_user_event_times "
        f"  WHERE event IN ({names}){_cohort_sql(query)} GROUP BY user_id"
        f") WHERE level > 0{f' AND NOT ({excluded})' if excluded else ''}"
    )


def _own_window(query: FunnelQuery, k: int) -> bool:
    """Whether step k (1-based, >= 2) has a window of its own."""
    return len(query.step_windows) >= k - 1 and query.step_windows[k - 2] is not None


def _fold_sql_per_user(query: FunnelQuery) -> str:
    n = len(query.steps)
    mask = " + ".join(
        [f"if({_step_condition(i, s)}, {1 << i}, 0)" for i, s in enumerate(query.steps)]
        + [f"if(event = {{x{e}:String}}, {1 << (n + e)}, 0)" for e in range(len(query.exclusions))]
    )
    bval, _ = breakdown_sql(query.breakdown)
    fold = _fold_sql(query.order, n, exclusions=query.exclusions, step_windows=query.own_windows)
    return (
        "SELECT user_id, r.1 AS level, r.2 AS times, r.5 AS bval FROM ("
        f"  SELECT user_id, {fold} AS r FROM ("
        "    SELECT user_id, arraySort(arrayMap(e -> (e.2, e.3, e.4), groupUniqArray("
        f"      (uuid, toUnixTimestamp64Milli(timestamp) / 1000.0, toUInt16({mask}), toString({bval}))"
        "    ))) AS events FROM events "
        f"    WHERE {_source_filter(query)} "
        "    GROUP BY user_id"
        "  )"
        ") WHERE level > 0 AND r.3 != 2"  # 2: dropped by an exclusion
    )


def _params(query: FunnelQuery) -> dict:
    entry_from = dt.datetime.combine(query.date_from, dt.time(), dt.UTC).timestamp()
    entry_end = dt.datetime.combine(
        query.date_to + dt.timedelta(days=1), dt.time(), dt.UTC
    ).timestamp()
    window = query.window_seconds
    params = {
        "first": query.period.start_of(query.date_from).isoformat(),
        "entry_from": entry_from,
        "entry_end": entry_end,
        "window": window,
        "ts_from": dt.datetime.fromtimestamp(entry_from, dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "ts_end": dt.datetime.fromtimestamp(entry_end + window + 1, dt.UTC).strftime(
            "%Y-%m-%d %H:%M:%S"
        ),
    }
    for i, s in enumerate(query.steps):
        params[f"s{i}"] = s.event
        if s.property_key:
            params[f"pk{i}"] = s.property_key
            params[f"pv{i}"] = s.property_value
    for e, x in enumerate(query.exclusions):
        params[f"x{e}"] = x.event
    if query.own_windows:
        own = [w if w is not None else NO_WINDOW for w in query.step_windows]
        params["step_windows"] = [NO_WINDOW, *own]
        for k, w in enumerate(query.step_windows, start=2):
            if w is not None:
                params[f"sw{k}"] = float(w)
    if query.breakdown:
        params.update(query.breakdown.params)
    if query.in_cohort:
        params.update(query.in_cohort.params)
    return params


def _source_filter(query: FunnelQuery) -> str:
    names = " OR ".join(
        [f"event = {{s{i}:String}}" for i in range(len(query.steps))]
        + [f"event = {{x{e}:String}}" for e in range(len(query.exclusions))]
    )
    return (
        f"({names}) AND timestamp >= toDateTime64({{ts_from:String}}, 3, 'UTC') "
        f"AND timestamp < toDateTime64({{ts_end:String}}, 3, 'UTC'){_cohort_sql(query)}"
    )


def _cohort_sql(query: FunnelQuery) -> str:
    return f" AND {query.in_cohort.sql()}" if query.in_cohort else ""


def funnel(query: FunnelQuery) -> dict:
    return cached("funnel", {"query": query}, lambda: _funnel(query), ttl=cache_ttl(query.date_to))


def _funnel(query: FunnelQuery) -> dict:
    n = len(query.steps)
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
    periods = len(query.period.starts(query.date_from, query.date_to))
    entry = query.period.offset_sql(
        "{first:Date}", "toDate(toDateTime(toInt64(floor(times[1])), 'UTC'))"
    )
    trend = (
        f"countResample(0, {periods}, 1)({entry}) AS entered_by, "
        f"sumResample(0, {periods}, 1)(toUInt64(level = {n}), {entry}) AS converted_by"
    )
    # with a breakdown, one more grouping set gives the totals over all groups
    grouping = "GROUPING SETS ((bval), ())" if query.breakdown else "bval"
    sql = (
        f"SELECT bval, grouping(bval) AS is_total, {counts}{', ' + medians if medians else ''}, "
        f"{', '.join(buckets)}, {trend} FROM ({per_user_sql(query)}) "
        f"GROUP BY {grouping} ORDER BY is_total, bval"
    )
    rows = store().query(sql, _params(query), timeout=query_timeout())
    if query.breakdown is None:
        return {**_meta(query), **_group(query, rows[0] if rows else {})}
    total = next((r for r in rows if r["is_total"]), {})
    groups = [_group(query, row) for row in rows if not row["is_total"]]
    return {**_meta(query), **_group(query, total), "breakdowns": groups}


def _group(query: FunnelQuery, row: dict) -> dict:
    steps = []
    start = row.get("c1", 0)
    for k, s in enumerate(query.steps, start=1):
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
    starts = query.period.starts(query.date_from, query.date_to)
    entered = row.get("entered_by") or [0] * len(starts)
    converted = row.get("converted_by") or [0] * len(starts)
    trend = [
        {"period": start.isoformat(), "entered": e, "converted": c, "conversion": ratio(c, e)}
        for start, e, c in zip(starts, entered, converted, strict=True)
    ]
    result = {"steps": steps, "time_to_convert": distribution, "trend": trend}
    if query.breakdown is not None and "bval" in row and not row["is_total"]:
        result["breakdown"] = row["bval"]
    return result


def _meta(query: FunnelQuery) -> dict:
    return {
        "order": query.order.value,
        "window_days": query.window_days,
        "step_windows": list(query.step_windows) or None,
        "exclusions": [
            {"event": x.event, "from_step": x.from_step, "to_step": x.to_step}
            for x in query.exclusions
        ],
        "period": query.period.value,
        "date_from": query.date_from.isoformat(),
        "date_to": query.date_to.isoformat(),
        "breakdown_by": query.breakdown.name if query.breakdown else None,
    }


def funnel_dropped_users(query: FunnelQuery, *, step: int, limit: int, offset: int) -> dict:
    """Users who reached step-1 but not `step` (1-based, >= 2), ordered by user id."""
    sql = (
        "SELECT user_id, count() OVER () AS total FROM ("
        f"{per_user_sql(query)}) WHERE level = {{reached:UInt8}} "
        "ORDER BY user_id LIMIT {limit:UInt32} OFFSET {offset:UInt32}"
    )
    params = {**_params(query), "reached": step - 1, "limit": limit, "offset": offset}
    rows = store().query(sql, params, timeout=query_timeout())
    total = rows[0]["total"] if rows else 0
    if not rows and offset:
        count = store().query(
            f"SELECT count() AS n FROM ({per_user_sql(query)}) WHERE level = {{reached:UInt8}}",
            params,
            timeout=query_timeout(),
        )
        total = count[0]["n"]
    return {"total": total, "users": [r["user_id"] for r in rows]}


# --- input


def parse_steps(text: str) -> tuple[Step, ...]:
    """`signup,video_completed:video_style=animated,...`: events with an optional filter each."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if len(parts) < 2:
        raise serializers.ValidationError(
            "give 2 to 10 steps, separated by commas", code=UNPROCESSABLE
        )
    if len(parts) > MAX_STEPS:
        raise serializers.ValidationError(
            f"at most {MAX_STEPS} steps, got {len(parts)}", code=UNPROCESSABLE
        )
    steps = []
    for part in parts:
        event, _, condition = part.partition(":")
        if not EVENT_NAME.match(event):
            raise serializers.ValidationError(f"{event!r} is not an event name", code=UNPROCESSABLE)
        key, value = "", ""
        if condition:
            key, sep, value = condition.partition("=")
            if not sep or not re.match(r"^[A-Za-z0-9_.\-]{1,64}$", key) or len(value) > 200:
                raise serializers.ValidationError(
                    f"step filter {condition!r} must read key=value (a property key, a value)"
                )
        steps.append(Step(event, key, value))
    return tuple(steps)


_EXCLUSION = re.compile(r"^(?P<event>[^:]+):(?P<from>\d{1,2})-(?P<to>\d{1,2})$")
_DURATION = re.compile(r"^(?P<n>\d{1,6})(?P<unit>[mhd])$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}
DEFAULT_WINDOW_DAYS = 14


def parse_exclusions(text: str) -> tuple[Exclusion, ...]:
    """`event:i-j,...`: drop users who did `event` between step i and step j."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if len(parts) > MAX_EXCLUSIONS:
        raise serializers.ValidationError(
            f"at most {MAX_EXCLUSIONS} exclusions, got {len(parts)}", code=UNPROCESSABLE
        )
    found = []
    for part in parts:
        match = _EXCLUSION.match(part)
        if not match or not EVENT_NAME.match(match["event"]):
            raise serializers.ValidationError(
                f"{part!r} must read event:i-j (an event name, then the steps it must not "
                "happen between, e.g. video_failed:2-3)",
                code=UNPROCESSABLE,
            )
        found.append(Exclusion(match["event"], int(match["from"]), int(match["to"])))
    return tuple(found)


def parse_step_windows(text: str) -> tuple[float | None, ...]:
    """`30m,,2d`: each step after the first, in order, within that long after the step
    before it (m, h or d; empty: no window of its own)."""
    windows: list[float | None] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            windows.append(None)
            continue
        match = _DURATION.match(part)
        seconds = int(match["n"]) * _UNIT_SECONDS[match["unit"]] if match else 0
        if not match or not 60 <= seconds <= 365 * 86400:
            raise serializers.ValidationError(
                f"{part!r} is not a window: a whole number of minutes, hours or days "
                "(30m, 6h, 2d) from 1 minute to 365 days",
                code=UNPROCESSABLE,
            )
        windows.append(float(seconds))
    return tuple(windows)


class FunnelInput(RangeInput, InCohortInput):
    default_days = 30

    steps = serializers.CharField(
        max_length=2000,
        help_text="2-10 comma-separated steps: an event, optionally `event:key=value`",
    )
    window_days = serializers.IntegerField(
        min_value=1,
        max_value=365,
        required=False,
        help_text=f"every step within this many days of entry (default {DEFAULT_WINDOW_DAYS}; "
        "left out when every step has a window of its own: none)",
    )
    step_windows = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=200,
        help_text="one per step after the first, comma-separated: within 30m / 6h / 2d after "
        "the step before (empty: no own window), e.g. `1h,,7d`; not with order=any",
    )
    exclusions = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=1000,
        help_text="comma-separated `event:i-j`: users who did the event between step i and "
        "step j drop out of the funnel (at most 5; not a step's event)",
    )
    order = serializers.ChoiceField(
        choices=[o.value for o in Order], default=Order.SEQUENTIAL.value
    )

    def validate_steps(self, value):
        return parse_steps(value)

    def validate_step_windows(self, value):
        return parse_step_windows(value) if value.strip() else ()

    def validate_exclusions(self, value):
        return parse_exclusions(value)

    def validate(self, attrs):
        attrs = super().validate(attrs)
        steps = attrs.get("steps") or ()
        windows = attrs.get("step_windows") or ()
        if windows:
            if len(windows) != len(steps) - 1:
                raise serializers.ValidationError(
                    {
                        "step_windows": [
                            f"give one window per step after the first: {len(steps) - 1}"
                        ]
                    }
                )
            if attrs.get("order") == Order.ANY.value:
                raise serializers.ValidationError(
                    {"step_windows": ["per-step windows need order sequential or strict"]}
                )
        if attrs.get("window_days") is None and not (windows and all(windows)):
            attrs["window_days"] = DEFAULT_WINDOW_DAYS
        events = {s.event for s in steps}
        for x in attrs.get("exclusions") or ():
            if x.event in events:
                raise serializers.ValidationError(
                    {"exclusions": [f"{x.event!r} is a step of the funnel; exclude other events"]}
                )
            if not 1 <= x.from_step < x.to_step <= len(steps):
                raise serializers.ValidationError(
                    {"exclusions": [f"{x.label}: need 1 <= i < j <= {len(steps)}"]}
                )
        return attrs

    def query(self, *, user_filter=None) -> FunnelQuery:
        values = self.validated_data
        return FunnelQuery(
            steps=values["steps"],
            date_from=values["date_from"],
            date_to=values["date_to"],
            window_days=values.get("window_days"),
            order=Order(values["order"]),
            breakdown=values["breakdown"],
            period=values["period"],
            in_cohort=user_filter or values.get("in_cohort"),
            exclusions=values.get("exclusions") or (),
            step_windows=values.get("step_windows") or (),
        )


class FunnelDroppedInput(FunnelInput, PageInput):
    step = serializers.IntegerField(min_value=2, max_value=MAX_STEPS)

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if attrs["step"] > len(attrs["steps"]):
            raise serializers.ValidationError(
                {"step": ["beyond the last step of the funnel"]}, code=UNPROCESSABLE
            )
        return attrs


# --- page


def _dropped_url(request, step: int) -> str:
    return reverse("analytics:funnel-dropped") + "?" + query_string(request, step=step, csv=None)


def present_funnel(request, result, params):
    steps = result["steps"]
    groups = result.get("breakdowns") or [
        {"breakdown": None, "steps": steps, "trend": result["trend"]}
    ]
    bars = [
        {
            "type": "bar",
            "name": g["breakdown"] if g["breakdown"] is not None else "All users",
            "x": [f"{i + 1}.<br>{s['label']}" for i, s in enumerate(g["steps"])],
            "y": [s["count"] for s in g["steps"]],
            "text": [percent(s["conversion_from_start"]) for s in g["steps"]],
            "textposition": "auto",
            "marker": {"color": charts.color(i)},
        }
        for i, g in enumerate(groups)
    ]
    rules = [
        f"{x['event']} between steps {x['from_step']} and {x['to_step']}"
        for x in result["exclusions"]
    ]
    panels = [
        {
            "id": "funnel-steps",
            "title": "Users reaching each step",
            "table": "steps",
            "note": f"Left out: users who did {'; or '.join(rules)}." if rules else "",
            "figure": {
                "data": bars,
                "layout": charts.layout(barmode="group", yaxis={"title": "users"}),
            },
        },
        {
            "id": "funnel-time",
            "title": "Time to convert (entry to last step)",
            "table": "time_to_convert",
            "figure": {
                "data": [
                    {
                        "type": "bar",
                        "x": [b["bucket"] for b in result["time_to_convert"]],
                        "y": [b["users"] for b in result["time_to_convert"]],
                        "marker": {"color": charts.PALETTE[1]},
                    }
                ],
                "layout": charts.layout(yaxis={"title": "users who converted"}),
            },
        },
    ]
    panels.append(_funnel_trend_chart(result, groups))
    rows = []
    for g in groups:
        for i, s in enumerate(g["steps"], start=1):
            rows.append(
                {
                    "breakdown": g["breakdown"],
                    "step": i,
                    **s,
                    "median_time": duration_text(s["median_seconds_to_convert"]),
                }
            )
    columns = [("step", "#"), ("label", "Step")]
    if result.get("breakdowns"):
        columns.insert(0, ("breakdown", result["breakdown_by"]))
    columns += [
        ("count", "Users"),
        ("conversion_from_start", "From start"),
        ("conversion_from_previous", "From previous"),
        ("dropped", "Dropped"),
        ("median_time", "Median time from previous"),
        ("median_seconds_to_convert", "Median seconds"),
    ]
    links = {"dropped": lambda row: _dropped_url(request, row["step"]) if row["step"] > 1 else None}
    stats = [
        ("Entered", f"{steps[0]['count']:,}", steps[0]["label"]),
        ("Converted", percent(steps[-1]["conversion_from_start"]), f"{steps[-1]['count']:,} users"),
    ]
    return {
        "stats": stats,
        "charts": panels,
        "tables": [
            Table(
                "steps",
                "Steps",
                columns,
                rows,
                links,
                percent=("conversion_from_start", "conversion_from_previous"),
            ),
            Table(
                "time_to_convert",
                "Time to convert",
                [("bucket", "Time"), ("users", "Users")],
                result["time_to_convert"],
            ),
            Table(
                "trend",
                f"Conversion by {result['period']} of entry",
                ([("breakdown", result["breakdown_by"])] if result.get("breakdowns") else [])
                + [
                    ("period", result["period"].capitalize()),
                    ("entered", "Entered"),
                    ("converted", "Converted"),
                    ("conversion", "Conversion"),
                ],
                [{"breakdown": g["breakdown"], **t} for g in groups for t in g["trend"]],
                percent=("conversion",),
            ),
        ],
        "empty": not steps[0]["count"],
    }


def _window_days(result) -> int:
    """The overall window in whole days (the steps' own windows end to end without one)."""
    if result["window_days"] is not None:
        return result["window_days"]
    return -(-int(sum(result["step_windows"])) // 86400)


def _funnel_trend_chart(result, groups) -> dict:
    """Conversion (entry to last step) by period of entry: one line per breakdown group, over
    the users entering each period (bars) when there is no breakdown."""
    x = [t["period"] for t in result["trend"]]
    split = bool(result.get("breakdowns"))
    lines = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": g["breakdown"] if split else "Conversion",
            "x": x,
            "y": [None if t["conversion"] is None else t["conversion"] * 100 for t in g["trend"]],
            "yaxis": "y" if split else "y2",
            "line": {"color": charts.color(i)},
        }
        for i, g in enumerate(groups)
    ]
    if split:
        layout = charts.layout(yaxis={"title": "% converted", "rangemode": "tozero"})
        data = lines
    else:
        entered = {
            "type": "bar",
            "name": "Entered",
            "x": x,
            "y": [t["entered"] for t in result["trend"]],
            "marker": {"color": charts.BACKGROUND_SERIES},
        }
        data = [entered, *lines]
        layout = charts.two_axes("users entering", "% converted")
    layout["xaxis"] = charts.period_axis(result["period"], x)
    young = (dt.datetime.now(dt.UTC).date() - dt.date.fromisoformat(result["date_to"])).days
    return {
        "id": "funnel-trend",
        "wide": True,
        "title": f"Conversion by {result['period']} of entry",
        "table": "trend",
        "note": (
            f"Users who entered in the last {_window_days(result)} days may still convert."
            if young < _window_days(result)
            else ""
        ),
        "figure": {"data": data, "layout": layout},
    }


FUNNEL_FIELDS = [
    text_field(
        "steps",
        "Steps (comma-separated; event:key=value filters)",
        "signup,project_created,video_rendered,subscription_started",
        size=60,
    ),
    text_field("window_days", "Window (days)", "", size=3, kind="number"),
    select_field("order", "Order", [o.value for o in Order], Order.SEQUENTIAL.value),
    text_field("step_windows", "Step windows (e.g. 1h,,7d)", "", size=14),
    text_field("exclusions", "Exclude (event:i-j)", "", size=22),
]


def present_dropped(request, result, params):
    values = params.validated_data
    step = values["steps"][values["step"] - 1]
    title = f"Reached step {values['step'] - 1} but not step {values['step']} ({step.label})"
    return users_panel(
        request,
        result,
        title=title,
        stat="Users who dropped",
        back="analytics:funnel",
        own=("step",),
    )


def dropped_users(params: FunnelDroppedInput, *, export_limit: int | None = None) -> dict:
    """The requested page of the users who dropped, or the first `export_limit` of them."""
    values = params.validated_data
    return funnel_dropped_users(
        params.query(), step=values["step"], **page_window(values, export_limit)
    )


FUNNEL = Analysis(
    "funnel",
    "Funnel",
    FunnelInput,
    lambda params: funnel(params.query()),
    present_funnel,
    extra_fields=FUNNEL_FIELDS,
)
FUNNEL_DROPPED = Analysis(
    "funnel",
    "Funnel: users who dropped",
    FunnelDroppedInput,
    dropped_users,
    present_dropped,
    template="analytics/users.html",
    extra_fields=[*FUNNEL_FIELDS, text_field("step", "Dropped before step", size=3, kind="number")],
)
page = analysis_view(FUNNEL)
dropped_page = analysis_view(FUNNEL_DROPPED, users=True)
