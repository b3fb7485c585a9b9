"""Independent plain-pandas versions of the product analyses, the yardstick for the SQL.

They read a DataFrame of raw events (uuid, event, user_id, timestamp as UTC datetimes,
properties as JSON text) and follow the definitions in the selectors' docstrings, written
from those definitions without sharing code with the selectors. `bench queries` times them
against the SQL as the "same computation in pandas".
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re

import numpy as np
import pandas as pd

FUNNEL_BUCKETS = [60, 600, 3600, 6 * 3600, 86400, 3 * 86400, 7 * 86400]


def prepare(events: pd.DataFrame) -> pd.DataFrame:
    """Duplicate uuids once, UTC timestamps, the UTC day of each event."""
    ev = events.drop_duplicates("uuid").copy()
    ev["timestamp"] = pd.to_datetime(ev["timestamp"], utc=True)
    ev["day"] = ev["timestamp"].dt.tz_localize(None).dt.normalize()
    return ev


def bucket(days: pd.Series, period: str) -> pd.Series:
    if period == "day":
        return days
    if period == "week":
        return days - pd.to_timedelta(days.dt.day_of_week, unit="D")
    return days.dt.to_period("M").dt.to_timestamp()


def bucket_one(day: dt.date, period: str) -> pd.Timestamp:
    return bucket(pd.Series([pd.Timestamp(day)]), period).iloc[0]


def offset(start: pd.Series, end: pd.Series, period: str) -> pd.Series:
    if period == "month":
        return (end.dt.year - start.dt.year) * 12 + (end.dt.month - start.dt.month)
    days = (end - start).dt.days
    return days // 7 if period == "week" else days


def prop(props: str, key: str) -> str:
    value = json.loads(props).get(key) if props else None
    return value if isinstance(value, str) else ""


def retention(
    events,
    *,
    start_event,
    return_event,
    period,
    date_from,
    date_to,
    periods,
    mode="on",
    cohort_type="first_time",
    breakdown_key=None,
) -> list[dict]:
    ev = prepare(events)
    lo, hi = pd.Timestamp(date_from), pd.Timestamp(date_to)
    starts = ev[ev.event == start_event].sort_values(["timestamp", "properties"])
    first = starts.groupby("user_id", as_index=False).first()
    first["bval"] = [prop(p, breakdown_key) if breakdown_key else "" for p in first.properties]
    if cohort_type == "first_time":
        members = first[(first.day >= lo) & (first.day <= hi)][["user_id", "day", "bval"]]
    else:
        inrange = starts[(starts.day >= lo) & (starts.day <= hi)][["user_id", "day"]]
        members = inrange.merge(first[["user_id", "bval"]], on="user_id")
    members = members.assign(cohort=bucket(members.day, period))
    members = members.drop_duplicates(["user_id", "cohort"])
    returns = ev[(ev.event == return_event) & (ev.day <= hi)][["user_id", "day"]]
    returns = returns.assign(p=bucket(returns.day, period))[["user_id", "p"]].drop_duplicates()
    joined = members.merge(returns, on="user_id")
    joined["k"] = offset(joined.cohort, joined.p, period)
    joined = joined[joined.k >= 1]
    last = bucket_one(date_to, period)
    out = []
    for (cohort, bval), grp in members.groupby(["cohort", "bval"]):
        size = grp.user_id.nunique()
        observable = int(min(periods, offset(pd.Series([cohort]), pd.Series([last]), period)[0]))
        mine = joined[(joined.cohort == cohort) & (joined.bval == bval)]
        retained = [size]
        for k in range(1, observable + 1):
            hits = mine[mine.k == k] if mode == "on" else mine[mine.k >= k]
            retained.append(int(hits.user_id.nunique()))
        # a period is complete when its last day is on or before date_to
        ends = [cohort + _periods(period, k + 1) for k in range(len(retained))]
        out.append(
            {
                "cohort": cohort.date().isoformat(),
                "breakdown": bval if breakdown_key else None,
                "size": int(size),
                "retained": retained,
                "complete": sum(1 for e in ends if e - pd.Timedelta(days=1) <= hi),
            }
        )
    return sorted(out, key=lambda c: (c["cohort"], c["breakdown"] or ""))


def _periods(period: str, n: int):
    if period == "month":
        return pd.DateOffset(months=n)
    return pd.Timedelta(days=n * (7 if period == "week" else 1))


def _step_mask(row, steps) -> int:
    mask = 0
    for i, (event, key, value) in enumerate(steps):
        if row.event == event and (not key or prop(row.properties, key) == value):
            mask |= 1 << i
    return mask


def funnel_levels(
    events,
    *,
    steps,
    date_from,
    date_to,
    window_days,
    order,
    breakdown_key=None,
    breakdown_column=None,
    exclusions=(),
    step_windows=(),
) -> pd.DataFrame:
    """One row per user who entered: user_id, level, times (seconds), bval.
    `exclusions`: (event, i, j) drop a user who did the event after their step i and before
    their step j (if never reached, while the attempt could still advance); at equal times
    steps come first. `step_windows`: seconds (or None) each step k >= 2 may take after step
    k-1; `window_days` None: no overall window."""
    ev = prepare(events)
    entry_lo = pd.Timestamp(date_from, tz="UTC")
    entry_hi = pd.Timestamp(date_to, tz="UTC") + pd.Timedelta(days=1)
    window = window_days * 86400.0 if window_days is not None else float("inf")
    own = [None, *step_windows]  # own[k-1]: the window of step k
    names = {s[0] for s in steps} | {x[0] for x in exclusions}
    ev = ev[ev.event.isin(names) & (ev.timestamp >= entry_lo)]
    n_steps = len(steps)
    ev = ev.assign(
        mask=[
            _step_mask(r, steps)
            | sum(1 << (n_steps + e) for e, x in enumerate(exclusions) if r.event == x[0])
            for r in ev.itertuples()
        ],
        t=(ev.timestamp - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1) / 1000.0,
        bval=[
            (prop(p, breakdown_key) if breakdown_key else "") if not breakdown_column else v
            for p, v in zip(ev.properties, ev.get(breakdown_column, ev.properties), strict=True)
        ],
    )
    n = len(steps)
    lo, hi = entry_lo.timestamp(), entry_hi.timestamp()
    rows = []
    for user, grp in ev.groupby("user_id"):
        seq = sorted(zip(grp.t, grp["mask"], grp.bval, strict=True))
        times, done, bval, stopped, excluded = [], 0, "", False, False

        def live(t, times):
            """Whether the attempt with these step times can still advance at time t."""
            level = len(times)
            if t - times[0] > window:
                return False
            if order != "any" and level < n and level < len(own) and own[level] is not None:
                return t - times[-1] <= own[level]
            return True

        for t, full_mask, bv in seq:
            mask = full_mask & ((1 << n_steps) - 1)
            if excluded:
                break
            if times and not stopped and live(t, times):
                hit = any(
                    full_mask >> (n_steps + e) & 1 and i <= len(times) < j and t > times[i - 1]
                    for e, (_x, i, j) in enumerate(exclusions)
                )
                if hit:
                    excluded = True
                    break
            if not times:
                enters = (mask != 0) if order == "any" else bool(mask & 1)
                if enters and lo <= t < hi:
                    times, bval = [t], bv
                    done = (mask & -mask) if order == "any" else 1
                continue
            if stopped or not live(t, times):
                continue
            if order == "any":
                fresh = mask & ~done
                if fresh:
                    done |= fresh & -fresh
                    times.append(t)
                continue
            level = len(times)
            if level >= n:
                continue
            if mask >> level & 1:
                times.append(t)
            elif order == "strict" and mask and not (mask & ((1 << level) - 1)):
                stopped = True
        if times and not excluded:
            rows.append({"user_id": user, "level": len(times), "times": times, "bval": bval})
    return pd.DataFrame(rows, columns=["user_id", "level", "times", "bval"])


def funnel(levels: pd.DataFrame, n: int) -> dict:
    steps = []
    start = int((levels.level >= 1).sum())
    for k in range(1, n + 1):
        reached = levels[levels.level >= k]
        previous = int((levels.level >= k - 1).sum()) if k > 1 else len(reached)
        median = None
        if k > 1 and len(reached):
            median = float(pd.Series([t[k - 1] - t[k - 2] for t in reached.times]).median())
        steps.append(
            {
                "count": len(reached),
                "conversion_from_start": len(reached) / start if start else None,
                "conversion_from_previous": len(reached) / previous if previous else None,
                "median_seconds_to_convert": median,
            }
        )
    done = levels[levels.level == n]
    totals = np.array([t[-1] - t[0] for t in done.times], dtype=float)
    return {"steps": steps, "time_to_convert": _time_histogram(totals)}


def _time_histogram(totals: np.ndarray) -> list[int]:
    """Users per time-to-convert bucket (seconds from entry to the last step)."""
    edges = [0, *FUNNEL_BUCKETS]
    hist = [int(((totals >= a) & (totals < b)).sum()) for a, b in itertools.pairwise(edges)]
    hist.append(int((totals >= edges[-1]).sum()))
    return hist


def funnel_sequential(events, *, steps, date_from, date_to, window_days, period) -> dict:
    """A vectorized sequential funnel over distinct step events without filters (the bench's
    pandas side): step k is the earliest step-k event at or after step k-1, within the window
    from entry. Returns what the funnel's SQL returns: step counts, median seconds from the
    previous step, the time-to-convert histogram and the conversion trend."""
    ev = prepare(events)
    lo = pd.Timestamp(date_from, tz="UTC")
    hi = pd.Timestamp(date_to, tz="UTC") + pd.Timedelta(days=1)
    window = pd.Timedelta(days=window_days)
    first = ev[(ev.event == steps[0]) & (ev.timestamp >= lo) & (ev.timestamp < hi)]
    reached = first.groupby("user_id").timestamp.min().rename("t0").to_frame()
    reached["prev"] = reached.t0
    entered = reached.t0
    counts, medians = [len(reached)], [None]
    for name in steps[1:]:
        cand = (
            ev[ev.event == name][["user_id", "timestamp"]]
            .merge(reached, left_on="user_id", right_index=True)
            .reset_index(drop=True)  # an empty merge keeps a `user_id` index beside the column
        )
        cand = cand[(cand.timestamp >= cand.prev) & (cand.timestamp - cand.t0 <= window)]
        nxt = cand.groupby("user_id").agg(t=("timestamp", "min"), prev=("prev", "first"))
        medians.append((nxt.t - nxt.prev).dt.total_seconds().median() if len(nxt) else None)
        reached = reached.loc[nxt.index].assign(prev=nxt.t)
        counts.append(len(reached))
    totals = (reached.prev - reached.t0).dt.total_seconds().to_numpy()
    done = entered.index.isin(reached.index)
    return {
        "counts": counts,
        "medians": medians,
        "time_to_convert": _time_histogram(totals),
        "trend": _trend(entered, done, period=period, date_from=date_from, date_to=date_to),
    }


def funnel_trend(levels: pd.DataFrame, n: int, *, period, date_from, date_to) -> list[dict]:
    """Per period of the range: users who entered in it, and those of them who converted."""
    entry = pd.Series(pd.to_datetime([t[0] for t in levels.times], unit="s", utc=True))
    done = (levels.level == n).to_numpy()
    return _trend(entry, done, period=period, date_from=date_from, date_to=date_to)


def _trend(entry: pd.Series, done, *, period, date_from, date_to) -> list[dict]:
    days = pd.Series(entry.dt.tz_localize(None).dt.normalize().to_numpy(), dtype="datetime64[ns]")
    frame = pd.DataFrame({"p": bucket(days, period).to_numpy(), "done": done})
    entered = frame.groupby("p").size()
    converted = frame[frame.done].groupby("p").size()
    out = []
    for start in period_starts(date_from, date_to, period):
        e, c = int(entered.get(start, 0)), int(converted.get(start, 0))
        out.append(
            {
                "period": start.date().isoformat(),
                "entered": e,
                "converted": c,
                "conversion": c / e if e else None,
            }
        )
    return out


def period_starts(date_from, date_to, period) -> list[pd.Timestamp]:
    first, last = bucket_one(date_from, period), bucket_one(date_to, period)
    out = [first]
    while out[-1] < last:
        out.append(out[-1] + _periods(period, 1))
    return out


def revenue(events, *, date_from, date_to, period) -> list[dict]:
    ev = prepare(events)
    subs = ev[ev.event.str.startswith("subscription_")].copy()
    cancelled = (subs.event == "subscription_cancelled").to_numpy()
    subs["mrr"] = [
        0.0 if c else float(json.loads(p).get("mrr", 0) or 0)
        for c, p in zip(cancelled, subs.properties, strict=True)
    ]
    subs["tier"] = [
        "" if c else prop(p, "tier") for c, p in zip(cancelled, subs.properties, strict=True)
    ]
    subs = subs.sort_values(["timestamp", "mrr", "tier"])
    starts = period_starts(date_from, date_to, period)
    step = _periods(period, 1)
    bounds = [s.tz_localize("UTC") for s in starts] + [(starts[-1] + step).tz_localize("UTC")]
    users = pd.Index(subs.user_id.unique())

    def state(at):  # each user's (mrr, tier) from their last event before `at`
        last = subs[subs.timestamp < at].groupby("user_id")[["mrr", "tier"]].last()
        return last.reindex(users).fillna({"mrr": 0.0, "tier": ""})

    out = []
    opening = state(bounds[0])
    for i, s in enumerate(starts):
        closing = state(bounds[i + 1])
        o, c = opening.mrr, closing.mrr
        paying = closing[c > 0]
        out.append(
            {
                "period": s.date().isoformat(),
                "mrr": float(c.sum()),
                "new_mrr": float(c[(o == 0) & (c > 0)].sum()),
                "expansion_mrr": float((c - o)[(o > 0) & (c > o)].sum()),
                "contraction_mrr": float((o - c)[(o > 0) & (c > 0) & (c < o)].sum()),
                "churned_mrr": float(o[(o > 0) & (c == 0)].sum()),
                "paying_users": len(paying),
                "by_tier": {k: int(v) for k, v in paying.tier.value_counts().items()},
            }
        )
        opening = closing
    return out


def funnel_sequential_differences(got: dict, expected: dict) -> list[str]:
    """Where the funnel's result disagrees with `funnel_sequential` (medians to the ms)."""
    out = []
    for k, (step, count, median) in enumerate(
        zip(got["steps"], expected["counts"], expected["medians"], strict=True), start=1
    ):
        if step["count"] != count:
            out.append(f"step {k}: {step['count']} users, pandas {count}")
        mine = step["median_seconds_to_convert"]
        if (mine is None) != (median is None) or (mine is not None and abs(mine - median) > 2e-3):
            out.append(f"step {k}: median {mine} s, pandas {median} s")
    hist = [b["users"] for b in got["time_to_convert"]]
    if hist != expected["time_to_convert"]:
        out.append(f"time to convert {hist}, pandas {expected['time_to_convert']}")
    mine = [(t["period"], t["entered"], t["converted"]) for t in got["trend"]]
    theirs = [(t["period"], t["entered"], t["converted"]) for t in expected["trend"]]
    if mine != theirs:
        out.append("conversion trend differs")
    return out


def revenue_differences(got: list[dict], expected: list[dict]) -> list[str]:
    """Where revenue's periods disagree with `revenue` (amounts to the cent)."""
    if [g["period"] for g in got] != [e["period"] for e in expected]:
        return ["periods differ"]
    out = []
    for g, e in zip(got, expected, strict=True):
        for key in ("mrr", "new_mrr", "expansion_mrr", "contraction_mrr", "churned_mrr"):
            if abs(g[key] - e[key]) > 0.006:
                out.append(f"{g['period']} {key}: {g[key]}, pandas {e[key]}")
        if (g["paying_users"], g["paying_users_by_tier"]) != (e["paying_users"], e["by_tier"]):
            out.append(f"{g['period']} paying users differ")
    return out


# --- trends


def _period_starts(date_from: dt.date, date_to: dt.date, period: str) -> list[pd.Timestamp]:
    first, last = bucket_one(date_from, period), bucket_one(date_to, period)
    freq = {"day": "D", "week": "7D", "month": "MS"}[period]
    return list(pd.date_range(first, last, freq=freq))


def _period_end(start: pd.Timestamp, period: str) -> pd.Timestamp:
    if period == "day":
        return start
    if period == "week":
        return start + pd.Timedelta(days=6)
    return start + pd.offsets.MonthEnd(0)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _holds(props: dict, key: str, op: str, value: str) -> bool:
    text = props.get(key)
    text = text if isinstance(text, str) else ""
    raw = props.get(key)
    if op == "eq":
        return text == value
    if op == "neq":
        return text != value
    if op == "contains":
        return value in text
    if op == "not_contains":
        return value not in text
    if op == "regex":
        return re.search(value, text) is not None
    if op == "is_set":
        return key in props
    if op == "is_not_set":
        return key not in props
    if not _is_number(raw):
        return False
    number = float(value)
    return {"gt": raw > number, "gte": raw >= number, "lt": raw < number, "lte": raw <= number}[op]


def trend(
    events,
    *,
    series,
    date_from,
    date_to,
    period,
    math,
    math_property=None,
    filters=(),
    breakdown=None,
    user_props=None,
    limit=10,
    rank_from=None,
    rank_to=None,
) -> list[dict]:
    """[{event, breakdown_value, points: [{period, value}]}] by the definitions in trends.py.
    breakdown: ("event", key) or ("user", column) with user_props {user_id: value}; the top
    `limit` values rank over [rank_from, rank_to] (default: the range)."""
    ev = prepare(events)
    ev["props"] = ev.properties.map(lambda p: json.loads(p) if p else {})
    keep = ev.event.isin(series)
    for key, op, value in filters:
        keep &= ev.props.map(lambda p, k=key, o=op, v=value: _holds(p, k, o, v))
    ev = ev[keep].copy()
    if breakdown is None:
        ev["bval"] = ""
    elif breakdown[0] == "event":
        ev["bval"] = [
            v if isinstance(v, str) else "" for v in ev.props.map(lambda p: p.get(breakdown[1]))
        ]
    else:
        ev["bval"] = ev.user_id.map(lambda u: (user_props or {}).get(u, ""))
    lo, hi = pd.Timestamp(date_from), pd.Timestamp(date_to)
    rlo, rhi = pd.Timestamp(rank_from or date_from), pd.Timestamp(rank_to or date_to)
    if breakdown is not None:
        ranked = ev[(ev.day >= rlo) & (ev.day <= rhi)]
        tops = {}
        for event, part in ranked.groupby("event"):
            counts = part.groupby("bval").size().reset_index(name="n")
            counts = counts.sort_values(["n", "bval"], ascending=[False, True])
            tops[event] = set(counts.bval[:limit])
        ev["bval"] = [
            b if b in tops.get(e, set()) else "$other"
            for e, b in zip(ev.event, ev.bval, strict=True)
        ]
    starts = _period_starts(date_from, date_to, period)
    window = {"weekly_active": 7, "monthly_active": 30}.get(math)
    out = []
    for event in series:
        mine = ev[ev.event == event]
        groups = (
            sorted(set(mine[(mine.day >= lo) & (mine.day <= hi)].bval)) if window is None else None
        )
        if window is not None:
            ends = [min(_period_end(s, period), hi) for s in starts]
            first_window = ends[0] - pd.Timedelta(days=window - 1)
            groups = sorted(set(mine[(mine.day >= first_window) & (mine.day <= hi)].bval))
        if breakdown is None:
            groups = [""]
        for b in groups:
            part = mine[mine.bval == b]
            points = []
            for i, start in enumerate(starts):
                if window is not None:
                    end = ends[i]
                    inside = part[(part.day <= end) & (part.day > end - pd.Timedelta(days=window))]
                    value = inside.user_id.nunique()
                else:
                    inside = part[
                        (bucket(part.day, period) == start) & (part.day >= lo) & (part.day <= hi)
                    ]
                    value = _trend_math(inside, math, math_property)
                points.append({"period": start.date().isoformat(), "value": value})
            if window is not None and breakdown is not None and not any(p["value"] for p in points):
                continue  # a value whose users fall in no point's window has no series
            out.append(
                {
                    "event": event,
                    "breakdown_value": b if breakdown is not None else None,
                    "points": points,
                }
            )
    return out


def _trend_math(rows: pd.DataFrame, math: str, key: str | None):
    if math == "total":
        return len(rows)
    if math == "unique_users":
        return rows.user_id.nunique()
    if math == "per_user_avg":
        return len(rows) / rows.user_id.nunique() if len(rows) else 0
    values = [p[key] for p in rows.props if _is_number(p.get(key))]
    if not values:
        return 0
    fn = {
        "sum": np.sum,
        "avg": np.mean,
        "min": np.min,
        "max": np.max,
        "median": lambda v: np.quantile(v, 0.5),
        "p90": lambda v: np.quantile(v, 0.9),
    }[math]
    return float(fn(np.array(values, dtype=float)))


def trend_differences(got: list[dict], expected: list[dict], compare="current") -> list[str]:
    """Where the selector's `compare` series differ from the reference's (1e-6 relative)."""
    mine = {
        (s["event"], s["breakdown_value"]): s["points"]
        for s in got
        if s["event"] and s["compare"] == compare
    }
    theirs = {(s["event"], s["breakdown_value"]): s["points"] for s in expected}
    if set(mine) != set(theirs):
        return [f"series {sorted(set(mine) ^ set(theirs), key=str)[:3]} on one side only"]
    out = []
    for key, points in theirs.items():
        for a, b in zip(mine[key], points, strict=True):
            if a["period"] != b["period"] or abs(a["value"] - b["value"]) > 1e-6 * max(
                1, abs(b["value"])
            ):
                out.append(f"{key} {b['period']}: {a['value']} vs {b['value']}")
    return out


def lifecycle(events, *, event, date_from, date_to, period) -> list[dict]:
    """New / returning / resurrecting / dormant (negative) users per period start."""
    ev = prepare(events)
    ev = ev[ev.event == event]
    first = ev.groupby("user_id").day.min()
    first_p = bucket(first, period)
    ev = ev.assign(p=bucket(ev.day, period))
    active = ev[ev.day <= pd.Timestamp(date_to)].groupby("user_id").p.agg(set)
    starts = _period_starts(date_from, date_to, period)
    out = []
    for start in starts:
        before = bucket_one((start - pd.Timedelta(days=1)).date(), period)
        row = {"period": start.date().isoformat(), "new": 0, "returning": 0}
        row |= {"resurrecting": 0, "dormant": 0}
        for user, periods in active.items():
            if start in periods:
                if first_p[user] == start:
                    row["new"] += 1
                elif before in periods:
                    row["returning"] += 1
                else:
                    row["resurrecting"] += 1
            elif before in periods:
                row["dormant"] -= 1
        out.append(row)
    return out


def stickiness(events, *, event, date_from, date_to) -> dict[str, list[int]]:
    """{week start: users by distinct days (1-7) in range}."""
    ev = prepare(events)
    ev = ev[(ev.event == event) & (ev.day >= pd.Timestamp(date_from))]
    ev = ev[ev.day <= pd.Timestamp(date_to)]
    ev = ev.assign(week=bucket(ev.day, "week"))
    days = ev.groupby(["user_id", "week"]).day.nunique()
    out = {s.date().isoformat(): [0] * 7 for s in _period_starts(date_from, date_to, "week")}
    for (_user, week), n in days.items():
        out[week.date().isoformat()][n - 1] += 1
    return out


def paths(
    events,
    *,
    date_from,
    date_to,
    start_event="",
    end_event="",
    steps=5,
    bound="session",
    bound_minutes=30,
    exclude=(),
    top=5,
) -> dict:
    """Paths as the selector's docstring defines them: {(path tuple): users}, the nodes
    {(step, label): users}, the edges {(step, source, target): users} and, per edge, its
    users. Written per user in plain Python over the prepared frame."""
    ev = prepare(events)
    ev = ev[~ev.event.isin(list(exclude))]
    ev = ev.assign(ms=(ev.timestamp - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1))
    ev = ev.drop_duplicates(["user_id", "event", "ms"])  # one name at one millisecond: once
    lo = pd.Timestamp(date_from, tz="UTC")
    hi = pd.Timestamp(date_to, tz="UTC") + pd.Timedelta(days=1)
    limit = bound_minutes * 60_000
    per_user = {}
    for user, grp in ev.groupby("user_id"):
        seq = sorted(zip(grp.ms, grp.event, grp.uuid, strict=True))
        in_range = [
            i for i, (ms, e, _u) in enumerate(seq) if lo.value // 10**6 <= ms < hi.value // 10**6
        ]
        anchor = end_event or start_event
        candidates = [i for i in in_range if not anchor or seq[i][1] == anchor]
        if not candidates:
            continue
        if end_event:
            i0 = candidates[-1]
            walk = seq[i0::-1]  # the end event, then earlier ones
        else:
            i0 = candidates[0]
            walk = seq[i0:]
        path = [walk[0]]
        for item in walk[1:]:
            if len(path) == steps:
                break
            if bound == "session" and abs(item[0] - path[-1][0]) > limit:
                break
            if bound == "window" and abs(item[0] - walk[0][0]) > limit:
                break
            path.append(item)
        names = [e for _ms, e, _u in path]
        per_user[user] = tuple(reversed(names)) if end_event else tuple(names)
    sequences: dict = {}
    placed = {}
    for user, path in per_user.items():
        sequences[path] = sequences.get(path, 0) + 1
        first = steps - len(path) + 1 if end_event else 1
        placed[user] = {first + i: e for i, e in enumerate(path)}
    by_step: dict = {}
    for where in placed.values():
        for step, e in where.items():
            by_step.setdefault(step, {}).setdefault(e, 0)
            by_step[step][e] += 1
    kept = {
        step: {e for e, _n in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:top]}
        for step, c in by_step.items()
    }
    nodes, edges, edge_users = {}, {}, {}
    for user, where in placed.items():
        labels = {s: (e if e in kept[s] else "$other") for s, e in where.items()}
        for s, label in labels.items():
            nodes[(s, label)] = nodes.get((s, label), 0) + 1
            if s + 1 in labels:
                key = (s, label, labels[s + 1])
                edges[key] = edges.get(key, 0) + 1
                edge_users.setdefault(key, []).append(user)
    return {
        "sequences": sequences,
        "nodes": nodes,
        "edges": edges,
        "edge_users": {k: sorted(v) for k, v in edge_users.items()},
    }


def paths_differences(got: dict, expected: dict) -> list[str]:
    """Where a paths result differs from `paths` above (nodes, edges, whole sequences)."""
    out = []
    nodes = {(n["step"], n["event"]): n["users"] for n in got["nodes"]}
    if nodes != expected["nodes"]:
        out.append("nodes differ")
    edges = {(e["step"], e["source"], e["target"]): e["users"] for e in got["edges"]}
    if edges != expected["edges"]:
        out.append("edges differ")
    top = sorted(expected["sequences"].items(), key=lambda kv: (-kv[1], kv[0]))[: len(got["paths"])]
    if [(tuple(p["events"]), p["users"]) for p in got["paths"]] != top:
        out.append("top paths differ")
    if got["users"] != sum(expected["sequences"].values()):
        out.append(f"users {got['users']} vs {sum(expected['sequences'].values())}")
    return out


def funnel_differences(got: dict, expected: dict) -> list[str]:
    """Where a funnel result differs from `funnel` above (counts, conversions, medians,
    time-to-convert buckets)."""
    out = []
    for k, (mine, theirs) in enumerate(zip(got["steps"], expected["steps"], strict=True), 1):
        if mine["count"] != theirs["count"]:
            out.append(f"step {k}: {mine['count']} vs {theirs['count']} users")
        a, b = mine["median_seconds_to_convert"], theirs["median_seconds_to_convert"]
        if (a is None) != (b is None) or (a is not None and abs(a - b) > 2e-3):
            out.append(f"step {k}: median {a} vs {b}")
    if [b["users"] for b in got["time_to_convert"]] != expected["time_to_convert"]:
        out.append("time-to-convert buckets differ")
    return out
