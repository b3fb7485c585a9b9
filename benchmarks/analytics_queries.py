"""`bench queries`: the product analyses, SQL on the rollups vs pandas.

Loads the product simulation's history (`analytics.simulation.generate`, the generator of the
demo and of `generate_events`) into its own embedded store: 120k users over 12 months, ~9.8M
events (`--quick`: 2,400 users, ~200k events). Then times retention by month, a 4-step funnel
and revenue by month: cold (result cache empty; the median of 7 runs, as 3 varied by a third
between runs of the command), cached (Redis), and the same computation in pandas, which loads
the events it needs from the store and computes with the reference implementation the tests
use.
Each line also says whether the SQL's result equals the pandas one (every cohort, step count,
median, histogram bucket, trend point and revenue figure).
"""

from __future__ import annotations

import datetime as dt
import statistics
import time

import pandas as pd
from django.conf import settings
from django.test.utils import override_settings

from analytics.catalog import Event
from analytics.product.common import Period
from analytics.product.funnels import Exclusion, FunnelQuery, Step, funnel
from analytics.product.lifecycle import LifecycleQuery, StickinessQuery, lifecycle, stickiness
from analytics.product.paths import PathsQuery, paths
from analytics.product.retention import RetentionQuery, retention
from analytics.product.revenue import RevenueQuery, revenue
from analytics.product.trends import Math, TrendBreakdown, TrendQuery, trends
from analytics.simulation import GenerationSpec, generate
from analytics.store import store
from analytics.store.base import QueryTimeout
from analytics.store.bulk import STORE_TABLES
from analytics.store.cache import cache_invalidate
from benchmarks.harness import median_seconds

FUNNEL_STEPS = tuple(
    e.value
    for e in (Event.SIGNUP, Event.PROJECT_CREATED, Event.VIDEO_RENDERED, Event.SUBSCRIPTION_STARTED)
)
# ~81 events per simulated user-year: ~9.8M events (`--quick`: ~200k)
USERS, QUICK_USERS = 120_000, 2_400
SEED = 7


_META = (
    "CREATE TABLE IF NOT EXISTS bench_loaded (spec String, events UInt64) "
    "ENGINE = ReplacingMergeTree ORDER BY spec"
)


def bench_spec(users: int) -> tuple[GenerationSpec, dt.date, dt.date]:
    """The bench history: `users` simulated over the 12 months up to yesterday."""
    end = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    start = (pd.Timestamp(end) - pd.DateOffset(months=12)).date() + dt.timedelta(days=1)
    spec = GenerationSpec(
        users=users,
        months=12,
        seed=SEED,
        end=dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC),
    )
    return spec, start, end


def bench_analyses(start: dt.date, end: dt.date) -> dict:
    steps = tuple(Step(s) for s in FUNNEL_STEPS)
    return {
        "retention by month": lambda: retention(
            RetentionQuery(date_from=start, date_to=end, period=Period.MONTH)
        ),
        "4-step funnel": lambda: funnel(FunnelQuery(steps=steps, date_from=start, date_to=end)),
        "revenue by month": lambda: revenue(
            RevenueQuery(date_from=start, date_to=end, period=Period.MONTH)
        ),
        "trend by day, 2 events": lambda: trends(trend_queries(start, end)[0]),
        "trend by week, breakdown": lambda: trends(trend_queries(start, end)[1]),
        "paths after signup, 5 steps": lambda: paths(paths_query(start, end)),
        "funnel with an exclusion": lambda: funnel(exclusion_funnel(start, end)),
        "lifecycle by week": lambda: lifecycle(
            LifecycleQuery(LIFECYCLE_EVENT, start, end, Period.WEEK)
        ),
        "stickiness": lambda: stickiness(StickinessQuery(LIFECYCLE_EVENT, start, end)),
    }


def paths_query(start: dt.date, end: dt.date) -> PathsQuery:
    """What users do in the session they sign up in: 5 steps, 30-minute sessions."""
    return PathsQuery(date_from=start, date_to=end, start_event=Event.SIGNUP.value, steps=5)


# users who filed a support ticket between creating a project and rendering drop out
EXCLUSION = Exclusion(Event.SUPPORT_TICKET.value, 2, 3)


def exclusion_funnel(start: dt.date, end: dt.date) -> FunnelQuery:
    steps = tuple(Step(s) for s in FUNNEL_STEPS)
    return FunnelQuery(steps=steps, date_from=start, date_to=end, exclusions=(EXCLUSION,))


TREND_EVENTS = ("video_rendered", "project_created")
# who renders, week by week: new, returning, resurrecting, dormant; and on how many days
LIFECYCLE_EVENT = "video_rendered"


def trend_queries(start: dt.date, end: dt.date) -> tuple[TrendQuery, TrendQuery]:
    """Events per day of two events; unique users per week by country (top 10 + other)."""
    return (
        TrendQuery(series=TREND_EVENTS, date_from=start, date_to=end, period=Period.DAY),
        TrendQuery(
            series=TREND_EVENTS[:1],
            date_from=start,
            date_to=end,
            period=Period.WEEK,
            math=Math.UNIQUE_USERS,
            breakdown=TrendBreakdown.parse("country"),
        ),
    )


def _load(stdout, spec: GenerationSpec) -> int:
    """Simulate `spec` into the bench store, unless it already holds this very history (same
    users, months, end and seed): a rerun the same day skips the load."""
    db = store()
    key = f"users={spec.users} months={spec.months} end={spec.end_at.isoformat()} seed={spec.seed}"
    with db.session():
        db.command(_META)
        done = db.query("SELECT events FROM bench_loaded WHERE spec = {spec:String}", {"spec": key})
        if done and db.query("SELECT count() AS n FROM events")[0]["n"] == done[0]["events"]:
            stdout.write(f"reusing the {done[0]['events']:,} events already loaded ({key})")
            return done[0]["events"]
        for table in (*STORE_TABLES, "users", "bench_loaded"):
            db.command(f"TRUNCATE TABLE {table}")
    made = generate(spec, db=db)
    db.insert("bench_loaded", [{"spec": key, "events": made.events}])
    stdout.write(
        f"loaded {made.events:,} events of {made.users:,} simulated users (the product "
        f"simulation, as for the demo) in {made.seconds:.1f} s "
        f"({made.events_per_second:,.0f} rows/s, rollups included)"
    )
    return made.events


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

    spec, start, end = bench_spec(QUICK_USERS if quick else USERS)
    loaded = _load(stdout, spec)
    cache_invalidate()
    analyses = bench_analyses(start, end)
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
            f"SELECT {cols} FROM events WHERE event IN {{steps:Array(String)}} "
            "AND timestamp >= toDateTime64({ts:String}, 3, 'UTC')",
            {**params, "steps": list(FUNNEL_STEPS)},
        )
        return reference.funnel_sequential(
            frame, steps=FUNNEL_STEPS, date_from=start, date_to=end, window_days=14, period="week"
        )

    def pandas_revenue():
        frame = _pandas_frame(f"SELECT {cols} FROM events WHERE event LIKE 'subscription_%'", {})
        return reference.revenue(frame, date_from=start, date_to=end, period="month")

    def pandas_trend(which: int):
        q = trend_queries(start, end)[which]
        frame = _pandas_frame(
            f"SELECT {cols} FROM events WHERE event IN {{events:Array(String)}} "
            "AND timestamp >= toDateTime64({ts:String}, 3, 'UTC')",
            {**params, "events": list(q.series)},
        )
        return reference.trend(
            frame,
            series=q.series,
            date_from=start,
            date_to=end,
            period=q.period.value,
            math=q.math.value,
            breakdown=("event", "geo_country") if q.breakdown else None,
        )

    def pandas_paths():
        frame = _pandas_frame(
            "SELECT uuid, event, user_id, timestamp FROM events "
            "WHERE timestamp >= toDateTime64({ts:String}, 3, 'UTC')",
            params,
        )
        q = paths_query(start, end)
        return reference.paths(
            frame, date_from=start, date_to=end, start_event=q.start_event, steps=q.steps
        )

    def pandas_exclusion_funnel():
        names = [*FUNNEL_STEPS, EXCLUSION.event]
        frame = _pandas_frame(
            f"SELECT {cols} FROM events WHERE event IN {{steps:Array(String)}} "
            "AND timestamp >= toDateTime64({ts:String}, 3, 'UTC')",
            {**params, "steps": names},
        )
        levels = reference.funnel_levels(
            frame,
            steps=[(s, "", "") for s in FUNNEL_STEPS],
            date_from=start,
            date_to=end,
            window_days=14,
            order="sequential",
            exclusions=[(EXCLUSION.event, EXCLUSION.from_step, EXCLUSION.to_step)],
        )
        return reference.funnel(levels, len(FUNNEL_STEPS))

    def pandas_lifecycle_frame():
        return _pandas_frame(
            f"SELECT {cols} FROM events WHERE event = {{event:String}}", {"event": LIFECYCLE_EVENT}
        )

    def pandas_lifecycle():
        return reference.lifecycle(
            pandas_lifecycle_frame(),
            event=LIFECYCLE_EVENT,
            date_from=start,
            date_to=end,
            period="week",
        )

    def pandas_stickiness():
        return reference.stickiness(
            pandas_lifecycle_frame(), event=LIFECYCLE_EVENT, date_from=start, date_to=end
        )

    references = {
        "retention by month": pandas_retention,
        "4-step funnel": pandas_funnel,
        "revenue by month": pandas_revenue,
        "trend by day, 2 events": lambda: pandas_trend(0),
        "trend by week, breakdown": lambda: pandas_trend(1),
        "paths after signup, 5 steps": pandas_paths,
        "funnel with an exclusion": pandas_exclusion_funnel,
        "lifecycle by week": pandas_lifecycle,
        "stickiness": pandas_stickiness,
    }
    # how each result is checked against its pandas twin: a list of differences
    compare = {
        "retention by month": lambda got, exp: [] if got["cohorts"] == exp else ["cohorts differ"],
        "4-step funnel": reference.funnel_sequential_differences,
        "revenue by month": lambda got, exp: reference.revenue_differences(got["periods"], exp),
        "trend by day, 2 events": lambda got, exp: reference.trend_differences(got["series"], exp),
        "trend by week, breakdown": lambda got, exp: reference.trend_differences(
            got["series"], exp
        ),
        "paths after signup, 5 steps": reference.paths_differences,
        "funnel with an exclusion": reference.funnel_differences,
        "lifecycle by week": lambda got, exp: [] if got["periods"] == exp else ["periods differ"],
        "stickiness": lambda got, exp: (
            [] if {w["week"]: w["by_days"] for w in got["weeks"]} == exp else ["weeks differ"]
        ),
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
        f"ratio {worst:.1f} vs pandas (the smallest of the {len(ratios)})"
    )


# ~100M events: ten times the users of `bench queries` (`--quick`: ten times its quick size).
SCALE = 10


def bench_queries_scale(stdout, *, quick: bool = False) -> None:
    """The analyses on the bench store (~10M events) and on one ten times larger (~100M): cold
    and cached time and the peak memory each query takes, per store, in one run. Each store
    lives under VAR_DIR and is reused by later runs the same day. Peak memory is measured in a
    fresh process per analysis (`_fresh_process_peak`)."""
    from analytics.store.migrate import store_migrate
    from core.embedded import ensure_embedded_redis

    ensure_embedded_redis()
    base = QUICK_USERS if quick else USERS
    figures = {}
    for users, folder in ((base, "bench-chdb"), (base * SCALE, "bench-chdb-scale")):
        with override_settings(CLICKHOUSE_URL=f"chdb://{settings.VAR_DIR / folder}"):
            store_migrate()
            spec, start, end = bench_spec(users)
            events = _load(stdout, spec)
            figures[events] = _cold_cached_memory(stdout, bench_analyses(start, end), events, users)
            store().release()
    (small, small_figures), (large, large_figures) = sorted(figures.items())
    growth = {name: large_figures[name] / small_figures[name] for name in small_figures}
    worst = max(growth, key=growth.get)
    stdout.write(
        f"queries-scale: slowest cold analysis {max(large_figures.values()) * 1000:.0f} ms on "
        f"{large:,} events, ratio {growth[worst]:.1f} vs the same on {small:,} events "
        f"({large / small:.1f}x the data; {worst} grows most)"
    )


def _cold_cached_memory(stdout, analyses: dict, events: int, users: int) -> dict[str, float]:
    colds = {}
    for name, fn in analyses.items():

        def cold(fn=fn):
            cache_invalidate()
            return fn()

        limit = settings.ANALYTICS_QUERY_TIMEOUT
        try:
            colds[name] = median_seconds(cold, 5)
            over = ""
        except QueryTimeout:
            # Where it breaks: the page would answer "took too long". Time it without the
            # limit to say by how much.
            with override_settings(ANALYTICS_QUERY_TIMEOUT=3600, CLICKHOUSE_QUERY_TIMEOUT=3600):
                colds[name] = median_seconds(cold, 3)
            over = f" (PAST the pages' {limit:.0f} s query limit: they answer 'took too long')"
        with override_settings(ANALYTICS_QUERY_TIMEOUT=3600, CLICKHOUSE_QUERY_TIMEOUT=3600):
            fn()  # fills the cache
        cached_s = median_seconds(fn, 20)
        store().release()  # the fresh process below opens the same store
        peak = _fresh_process_peak(users, name)
        stdout.write(
            f"{events:,} events, {name}: cold {colds[name] * 1000:.0f} ms{over}, cached "
            f"{cached_s * 1000:.1f} ms, peak memory {peak / 2**20:.0f} MiB"
        )
    return colds


_PEAK_CHILD = """
import sys, django
django.setup()
from analytics.store import store
from analytics.store.cache import cache_invalidate
from benchmarks.analytics_queries import bench_analyses, bench_spec
from benchmarks.harness import PeakMemory
_, start, end = bench_spec(int(sys.argv[1]))
fn = bench_analyses(start, end)[sys.argv[2]]
store().query("SELECT count() AS n FROM events")  # the engine and the tables' metadata loaded
cache_invalidate()
with PeakMemory() as memory:
    fn()
print(memory.peak_bytes)
"""


def _fresh_process_peak(users: int, name: str) -> int:
    """The most resident memory a cold run of one analysis adds to a fresh process that has
    only opened the store: measured there because an engine in a long-lived process keeps the
    memory of earlier queries (and of the load) and reuses it, which hides a query's peak."""
    import os
    import subprocess
    import sys

    # without the query limit: the peak of a query that runs past it is still its peak
    env = {
        **os.environ,
        "CLICKHOUSE_URL": settings.CLICKHOUSE_URL,
        "ANALYTICS_QUERY_TIMEOUT": "3600",
        "CLICKHOUSE_QUERY_TIMEOUT": "3600",
    }
    out = subprocess.run(
        [sys.executable, "-c", _PEAK_CHILD, str(users), name],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=settings.BASE_DIR,
    )
    return int(out.stdout.strip().splitlines()[-1])
