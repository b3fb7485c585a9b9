"""`bench cohorts`: computing a behavioural cohort in the store vs pandas, and a cohort-filtered
funnel cold, on the bench store of `bench queries` (~9.8M events; `--quick`: ~200k).

The cohort: did `video_rendered` at least 3 times in the last 30 days AND (latest `user_tier`
is `free` OR did not `session_start` in the last 14 days). Computed as the product computes it
(one INSERT ... SELECT into `cohort_members`), and in pandas from the events it needs (a
vectorized twin of the tests' reference); the line says whether the member sets are equal.
Then the 4-step funnel of `bench queries`, cold, for everyone and for the cohort's members,
with the cohort's pandas funnel over the members' events.
"""

from __future__ import annotations

import datetime as dt
import json
import time

import pandas as pd
from django.conf import settings
from django.test.utils import override_settings

from analytics.cohorts import definition as definitions
from analytics.cohorts.selectors import CohortFilter
from analytics.product.funnels import FunnelQuery, Step, funnel
from analytics.store import store
from analytics.store.cache import cache_invalidate
from benchmarks.analytics_queries import (
    FUNNEL_STEPS,
    QUICK_USERS,
    USERS,
    _load,
    _pandas_frame,
    bench_spec,
)
from benchmarks.harness import median_seconds

COHORT_ID = 2**40  # far beyond any saved cohort's id: the bench never meets real members
DEFINITION = {
    "op": "and",
    "rules": [
        {"type": "event", "event": "video_rendered", "operator": "gte", "count": 3, "days": 30},
        {
            "op": "or",
            "rules": [
                {"type": "property", "key": "user_tier", "operator": "eq", "value": "free"},
                {"type": "event", "event": "session_start", "performed": False, "days": 14},
            ],
        },
    ],
}


def _pandas_members(as_of: dt.datetime) -> set[str]:
    """The bench cohort in pandas: per-user counts in each window and the latest tier."""
    ts = (as_of - dt.timedelta(days=30)).strftime("%Y-%m-%d %H:%M:%S")
    cols = "uuid, event, user_id, timestamp"
    end = {"end": as_of.strftime("%Y-%m-%d %H:%M:%S")}
    users = store().query_df(
        "SELECT DISTINCT user_id FROM events WHERE timestamp < toDateTime64({end:String}, 3, 'UTC')",
        end,
        timeout=600,
    )
    recent = _pandas_frame(
        f"SELECT {cols} FROM events WHERE event IN ('video_rendered', 'session_start') "
        "AND timestamp >= toDateTime64({ts:String}, 3, 'UTC') "
        "AND timestamp < toDateTime64({end:String}, 3, 'UTC')",
        {"ts": ts, **end},
    ).drop_duplicates("uuid")
    tiers = _pandas_frame(
        "SELECT uuid, user_id, timestamp, properties FROM events "
        "WHERE timestamp < toDateTime64({end:String}, 3, 'UTC') "
        "AND JSONHas(properties, 'user_tier')",
        end,
    ).drop_duplicates("uuid")
    tiers["key"] = tiers.uuid.astype(str)
    latest = tiers.sort_values(["timestamp", "key"]).groupby("user_id").properties.last()
    tier = latest.map(lambda p: _text(json.loads(p)["user_tier"]))
    renders = recent[recent.event == "video_rendered"].groupby("user_id").size()
    since14 = pd.Timestamp(as_of - dt.timedelta(days=14))
    sessions = recent[(recent.event == "session_start") & (recent.timestamp >= since14)]
    frame = pd.DataFrame(index=pd.Index(users.user_id, name="user_id"))
    frame["renders"] = renders.reindex(frame.index, fill_value=0)
    frame["tier"] = tier.reindex(frame.index)
    frame["sessions"] = sessions.groupby("user_id").size().reindex(frame.index, fill_value=0)
    chosen = (frame.renders >= 3) & ((frame.tier == "free") | (frame.sessions < 1))
    return set(frame.index[chosen])


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def bench_cohorts(stdout, *, quick: bool = False) -> None:
    """Runs on the bench store of `bench queries` under VAR_DIR, never on the configured one."""
    from analytics.store.migrate import store_migrate
    from core.embedded import ensure_embedded_redis

    ensure_embedded_redis()
    with override_settings(CLICKHOUSE_URL=f"chdb://{settings.VAR_DIR / 'bench-chdb'}"):
        store_migrate()
        _bench_cohorts(stdout, quick=quick)


def _bench_cohorts(stdout, *, quick: bool) -> None:
    from analytics.product.tests import reference

    spec, start, end = bench_spec(QUICK_USERS if quick else USERS)
    loaded = _load(stdout, spec)
    db = store()
    as_of = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC)
    normal = definitions.validate(DEFINITION)
    sql, params = definitions.members_sql(normal, as_of=as_of, versions={})
    version = [0]

    def compute():
        version[0] += 1
        db.command(
            "INSERT INTO cohort_members (cohort_id, version, user_id) "
            f"SELECT {{cid:UInt64}}, {{v:UInt32}}, user_id FROM ({sql})",
            {**params, "cid": COHORT_ID, "v": version[0]},
            timeout=600,
        )

    db.command("DELETE FROM cohort_members WHERE cohort_id = {cid:UInt64}", {"cid": COHORT_ID})
    compute_s = median_seconds(compute, 3)
    got = {
        r["user_id"]
        for r in db.query(
            "SELECT user_id FROM cohort_members WHERE cohort_id = {cid:UInt64} AND version = 1",
            {"cid": COHORT_ID},
        )
    }
    t = time.perf_counter()
    expected = _pandas_members(as_of)
    pandas_s = time.perf_counter() - t
    same = (
        "same members as pandas"
        if got == expected
        else (f"DIFFERENT from pandas ({len(got ^ expected)} users differ)")
    )
    stdout.write(
        f"cohort compute: {compute_s * 1000:.0f} ms for {len(got):,} members of "
        f"{loaded:,} events, pandas {pandas_s * 1000:.0f} ms, {pandas_s / compute_s:.1f}x, {same}"
    )

    steps = tuple(Step(s) for s in FUNNEL_STEPS)
    everyone = FunnelQuery(steps=steps, date_from=start, date_to=end)
    members = FunnelQuery(
        steps=steps, date_from=start, date_to=end, in_cohort=CohortFilter(COHORT_ID, version[0])
    )

    def cold(query):
        def run():
            cache_invalidate()
            return funnel(query)

        return run

    all_s = median_seconds(cold(everyone), 5)
    cohort_s = median_seconds(cold(members), 5)
    result = funnel(members)
    t = time.perf_counter()
    frame = _pandas_frame(
        "SELECT uuid, event, user_id, timestamp, properties FROM events "
        "WHERE event IN {steps:Array(String)} AND timestamp >= toDateTime64({ts:String}, 3, 'UTC')",
        {"steps": list(FUNNEL_STEPS), "ts": f"{start.isoformat()} 00:00:00"},
    )
    frame = frame[frame.user_id.isin(got)]
    twin = reference.funnel_sequential(
        frame, steps=FUNNEL_STEPS, date_from=start, date_to=end, window_days=14, period="week"
    )
    funnel_pandas_s = time.perf_counter() - t
    differences = reference.funnel_sequential_differences(result, twin)
    agreement = "same result as pandas" if not differences else f"DIFFERENT: {differences[:2]}"
    stdout.write(
        f"4-step funnel cold: everyone {all_s * 1000:.0f} ms, the cohort's members "
        f"{cohort_s * 1000:.0f} ms ({result['steps'][0]['count']:,} entered), pandas over the "
        f"members' events {funnel_pandas_s * 1000:.0f} ms, {agreement}"
    )
    db.command("DELETE FROM cohort_members WHERE cohort_id = {cid:UInt64}", {"cid": COHORT_ID})
    stdout.write(
        f"cohorts: compute {compute_s * 1000:.0f} ms and cohort funnel cold "
        f"{cohort_s * 1000:.0f} ms on {loaded:,} events, ratio {pandas_s / compute_s:.1f} "
        "vs pandas computing the cohort"
    )
