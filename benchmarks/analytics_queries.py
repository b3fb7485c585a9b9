"""`bench queries`: the product analyses, SQL on the rollups vs pandas.

Loads generated events into the embedded store (10M events, 100k users, 12 months; `--quick`:
200k events, 2k users), then times retention by month, a 4-step funnel and revenue by month:
cold (result cache empty; the median of 7 runs, as 3 varied by a third between runs of the
command), cached (Redis), and the same computation in pandas, which loads the
events it needs from the store and computes with the reference implementation the tests use.
Each line also says whether the SQL's result equals the pandas one (every cohort, step count,
median, histogram bucket, trend point and revenue figure).
The events come from this module's generator (`synthetic_events`); the shared generator
(`generate_events`) was not on main when this was written.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd
from django.conf import settings
from django.test.utils import override_settings

from analytics.catalog import FEATURES, TIER_MRR, VIDEO_STYLES
from analytics.product.common import Period
from analytics.product.funnels import FunnelQuery, Step, funnel
from analytics.product.retention import RetentionQuery, retention
from analytics.product.revenue import RevenueQuery, revenue
from analytics.store import store
from analytics.store.bulk import STORE_TABLES
from analytics.store.cache import cache_invalidate
from benchmarks.harness import median_seconds

FUNNEL_STEPS = ("signup", "project_created", "video_rendered", "subscription_started")
_DEVICES = np.array(["desktop", "mobile", "tablet"])
_COUNTRIES = np.array(["US", "GB", "DE", "IN", "BR", "FR"])
_TIERS_PAID = np.array(["basic", "pro", "enterprise"])


def _json_rows(frame: pd.DataFrame) -> bytes:
    return frame.to_json(orient="records", lines=True, date_format="iso", date_unit="ms").encode()


def _part(name: str, user_idx, ts, extra=None) -> pd.DataFrame:
    frame = {"event": name, "u": user_idx, "ts": ts}
    if extra is not None:
        frame["extra"] = extra
    return pd.DataFrame(frame)


def synthetic_events(
    *, users: int, events: int, end: dt.date, months: int = 12, seed: int = 7, chunk: int = 5000
) -> Iterator[tuple[int, bytes]]:
    """Yields (rows, JSONEachRow bytes) per chunk of users. Users sign up over `months`, stay
    active for an exponential lifetime (so cohorts decay), move through project -> render ->
    subscription with drop-off, and some upgrade, downgrade or cancel."""
    rng = np.random.default_rng(seed)
    end_ts = pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=1)
    start_ts = end_ts - pd.DateOffset(months=months)
    span = (end_ts - start_ts).total_seconds()
    per_user = max(8.0, events / users)
    for first in range(0, users, chunk):
        n = min(chunk, users - first)
        ids = np.array([f"user-{i:06d}" for i in range(first, first + n)])
        signup = start_ts.value / 1e9 + rng.random(n) * span
        lifetime = rng.exponential(60 * 86400, n) * rng.choice([0.3, 1, 4], n, p=[0.3, 0.5, 0.2])
        active_end = np.minimum(signup + lifetime, end_ts.value / 1e9 - 1)
        tier = np.where(rng.random(n) < 0.3, rng.choice(_TIERS_PAID, n), "free")
        device = rng.choice(_DEVICES, n, p=[0.5, 0.4, 0.1])
        country = rng.choice(_COUNTRIES, n)
        parts = []

        parts.append(_part("signup", np.arange(n), signup))
        # funnel: each step reached with some probability, a little later than the previous
        reached = np.ones(n, dtype=bool)
        t = signup.copy()
        for name, p in (("project_created", 0.7), ("video_rendered", 0.6)):
            reached &= rng.random(n) < p
            t = t + rng.exponential(2 * 86400, n)
            parts.append(_part(name, np.flatnonzero(reached), t[reached]))
        pays = reached & (rng.random(n) < 0.35) & (t < active_end)
        t_pay = t + rng.exponential(5 * 86400, n)
        idx = np.flatnonzero(pays & (t_pay < end_ts.value / 1e9))
        paid_tier = rng.choice(_TIERS_PAID, n, p=[0.6, 0.3, 0.1])
        parts.append(
            _part(
                "subscription_started",
                idx,
                t_pay[idx],
                [f'"tier":"{x}","mrr":{TIER_MRR[x]}' for x in paid_tier[idx]],
            )
        )
        change = idx[rng.random(len(idx)) < 0.3]
        t_change = t_pay[change] + rng.exponential(40 * 86400, len(change))
        keep = t_change < end_ts.value / 1e9
        change, t_change = change[keep], t_change[keep]
        up = rng.random(len(change)) < 0.6
        new_tier = np.where(up, "enterprise", "basic")
        parts.append(
            _part(
                "subscription_upgraded",
                change[up],
                t_change[up],
                [
                    f'"tier":"enterprise","mrr":{TIER_MRR["enterprise"]},"previous_mrr":{TIER_MRR[paid_tier[i]]}'
                    for i in change[up]
                ],
            )
        )
        parts.append(
            _part(
                "subscription_downgraded",
                change[~up],
                t_change[~up],
                [
                    f'"tier":"basic","mrr":{TIER_MRR["basic"]},"previous_mrr":{TIER_MRR[paid_tier[i]]}'
                    for i in change[~up]
                ],
            )
        )
        last_mrr = {i: TIER_MRR[paid_tier[i]] for i in idx}
        last_mrr.update({i: TIER_MRR[t] for i, t in zip(change, new_tier, strict=True)})
        cancel = idx[active_end[idx] < end_ts.value / 1e9 - 86400]
        cancel = cancel[rng.random(len(cancel)) < 0.7]
        t_cancel = np.maximum(active_end[cancel], t_pay[cancel] + 1)
        later = np.array(
            [
                t_cancel[j] > (t_change[change == i].max() if (change == i).any() else 0)
                for j, i in enumerate(cancel)
            ],
            dtype=bool,
        )
        cancel, t_cancel = cancel[later], t_cancel[later]
        parts.append(
            _part(
                "subscription_cancelled",
                cancel,
                t_cancel,
                [f'"previous_mrr":{last_mrr[i]}' for i in cancel],
            )
        )
        # activity spread over each user's lifetime: sessions, features, videos, scores
        budget = per_user - 4
        for name, share in (
            ("session_start", 0.5),
            ("feature_used", 0.25),
            ("video_completed", 0.15),
            ("satisfaction_score", 0.1),
        ):
            counts = rng.poisson(budget * share * (0.3 + 2 * lifetime / (lifetime + 90 * 86400)), n)
            u = np.repeat(np.arange(n), counts)
            ts = signup[u] + rng.random(len(u)) * (active_end[u] - signup[u]).clip(min=1)
            if name == "feature_used":
                extra = [f'"feature":"{f}"' for f in rng.choice(FEATURES, len(u))]
            elif name == "video_completed":
                extra = [f'"video_style":"{s}"' for s in rng.choice(VIDEO_STYLES, len(u))]
            elif name == "satisfaction_score":
                drift = ((ts - signup[u]) / (lifetime[u] + 1) * 3).astype(int)
                score = np.clip(rng.integers(5, 11, len(u)) - drift, 1, 10)
                extra = [
                    f'"score":{s},"video_style":"{v}"'
                    for s, v in zip(score, rng.choice(VIDEO_STYLES, len(u)), strict=True)
                ]
            else:
                extra = None
            parts.append(_part(name, u, ts, extra))
        frame = pd.concat(parts, ignore_index=True)
        frame = frame[frame.ts < end_ts.value / 1e9]
        u = frame.u.to_numpy()
        common = (
            '"user_tier":"'
            + pd.Series(tier[u])
            + '","device_type":"'
            + pd.Series(device[u])
            + '","geo_country":"'
            + pd.Series(country[u])
            + '"'
        )
        extra = frame["extra"].fillna("") if "extra" in frame else pd.Series([""] * len(frame))
        sep = np.where(extra.to_numpy() == "", "", ",")
        # 32 hex digits per uuid (ClickHouse parses them without dashes), made in one go
        hex_digits = rng.bytes(16 * len(frame)).hex().encode()
        out = pd.DataFrame(
            {
                "uuid": np.frombuffer(hex_digits, dtype="S32").astype(str),
                "event": frame.event.to_numpy(),
                "user_id": ids[u],
                "timestamp": pd.to_datetime(
                    (frame.ts.to_numpy() * 1000).astype("int64"), unit="ms"
                ),
                "properties": "{" + common.to_numpy() + sep + extra.to_numpy() + "}",
            }
        )
        yield len(out), _json_rows(out)


_META = (
    "CREATE TABLE IF NOT EXISTS bench_loaded (spec String, events UInt64) "
    "ENGINE = ReplacingMergeTree ORDER BY spec"
)


def _load(stdout, *, users: int, events: int, end: dt.date) -> int:
    """Generate and insert the events, unless the bench store already holds this very set
    (same sizes, end date and seed): a rerun the same day skips the long load."""
    db = store()
    spec = f"users={users} events={events} end={end} seed=7"
    with db.session():
        db.command(_META)
        done = db.query(
            "SELECT events FROM bench_loaded WHERE spec = {spec:String}", {"spec": spec}
        )
        if done and db.query("SELECT count() AS n FROM events")[0]["n"] == done[0]["events"]:
            stdout.write(f"reusing the {done[0]['events']:,} events already loaded ({spec})")
            return done[0]["events"]
        for table in (*STORE_TABLES, "bench_loaded"):
            db.command(f"TRUNCATE TABLE {table}")
    t0, total = time.perf_counter(), 0
    for rows, payload in synthetic_events(users=users, events=events, end=end):
        db.insert_json_each_row("events", payload)
        total += rows
    elapsed = time.perf_counter() - t0
    db.insert("bench_loaded", [{"spec": spec, "events": total}])
    stdout.write(
        f"loaded {total:,} events for {users:,} users in {elapsed:.1f} s "
        f"({total / elapsed:,.0f} rows/s, rollups kept by materialized views)"
    )
    return total


def _pandas_time(fn) -> tuple[float, object]:
    """One run, or the median of three when a run takes under 3 s (the fast references vary
    by half between single runs on this machine, the slow one, retention at ~20-40 s, far
    less), and the result."""
    t = time.perf_counter()
    result = fn()
    first = time.perf_counter() - t
    if first >= 3:
        return first, result
    return statistics.median([first, median_seconds(fn, 1), median_seconds(fn, 1)]), result


def _pandas_frame(sql: str, params: dict) -> pd.DataFrame:
    frame = store().query_df(sql, params, timeout=600)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame


def bench_queries(stdout, *, quick: bool = False) -> None:
    """Runs on its own embedded store under VAR_DIR, never on the configured one."""
    from analytics.store.migrate import store_migrate
    from core.embedded import ensure_embedded_redis

    ensure_embedded_redis()  # the result cache, when REDIS_URL is unset, as `run` does
    with override_settings(CLICKHOUSE_URL=f"chdb://{settings.VAR_DIR / 'bench-chdb'}"):
        store_migrate()
        _bench_queries(stdout, quick=quick)


def _bench_queries(stdout, *, quick: bool) -> None:
    from analytics.product.tests import reference

    users, events = (2_000, 200_000) if quick else (100_000, 10_000_000)
    end = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    start = (pd.Timestamp(end) - pd.DateOffset(months=12)).date() + dt.timedelta(days=1)
    loaded = _load(stdout, users=users, events=events, end=end)
    cache_invalidate()
    steps = tuple(Step(s) for s in FUNNEL_STEPS)
    analyses = {
        "retention by month": lambda: retention(
            RetentionQuery(date_from=start, date_to=end, period=Period.MONTH)
        ),
        "4-step funnel": lambda: funnel(FunnelQuery(steps=steps, date_from=start, date_to=end)),
        "revenue by month": lambda: revenue(
            RevenueQuery(date_from=start, date_to=end, period=Period.MONTH)
        ),
    }
    params = {"ts": f"{start.isoformat()} 00:00:00"}
    cols = "uuid, event, user_id, timestamp, properties"

    def pandas_retention():
        frame = _pandas_frame(
            f"SELECT {cols} FROM events WHERE event IN ('signup', 'session_start')", {}
        )
        return reference.retention(
            frame,
            start_event="signup",
            return_event="session_start",
            period="month",
            date_from=start,
            date_to=end,
            periods=12,
        )

    def pandas_funnel():
        frame = _pandas_frame(
            f"SELECT {cols} FROM events WHERE event IN ('signup', 'project_created', "
            "'video_rendered', 'subscription_started') "
            "AND timestamp >= toDateTime64({ts:String}, 3, 'UTC')",
            params,
        )
        return reference.funnel_sequential(
            frame, steps=FUNNEL_STEPS, date_from=start, date_to=end, window_days=14, period="week"
        )

    def pandas_revenue():
        frame = _pandas_frame(f"SELECT {cols} FROM events WHERE event LIKE 'subscription_%'", {})
        return reference.revenue(frame, date_from=start, date_to=end, period="month")

    references = {
        "retention by month": pandas_retention,
        "4-step funnel": pandas_funnel,
        "revenue by month": pandas_revenue,
    }
    # how each result is checked against its pandas twin: a list of differences
    compare = {
        "retention by month": lambda got, exp: [] if got["cohorts"] == exp else ["cohorts differ"],
        "4-step funnel": reference.funnel_sequential_differences,
        "revenue by month": lambda got, exp: reference.revenue_differences(got["periods"], exp),
    }
    ratios, colds = [], []
    for name, fn in analyses.items():

        def cold(fn=fn):
            cache_invalidate()
            return fn()

        cold_s = median_seconds(cold, 7)
        got = fn()  # fills the cache
        cached_s = median_seconds(fn, 20)
        pandas_s, expected = _pandas_time(references[name])
        ratios.append(pandas_s / cold_s)
        colds.append(cold_s)
        differences = compare[name](got, expected)
        agreement = (
            "same result as pandas"
            if not differences
            else f"DIFFERENT from pandas: {'; '.join(differences[:3])}"
        )
        stdout.write(
            f"{name}: cold {cold_s * 1000:.0f} ms, cached {cached_s * 1000:.1f} ms, "
            f"pandas {pandas_s * 1000:.0f} ms, {pandas_s / cold_s:.1f}x faster than pandas, "
            f"{agreement}"
        )
    worst = min(ratios)
    slowest = max(colds)
    stdout.write(
        f"queries: slowest cold analysis {slowest * 1000:.0f} ms on {loaded:,} events, "
        f"ratio {worst:.1f} vs pandas (the smallest of the three)"
    )
