"""`bench experiments`: assignment API throughput and p99 against a trivial JSON view, and
results on millions of exposure and conversion events; `bench experiments --aa`: the
false-positive rates of both engines on simulated A/A experiments peeked at every hour.

Assignment: one client process per core (at most 2) drives the full Django stack (API key
authentication, validation, hashing, exposure capture into the Redis buffer) through the
test client, so no HTTP server or load generator competes for the cores; the reference is
`/health`, a trivial JSON view, measured the same way in the same run.
Results: events generated inside a temporary embedded store with ClickHouse's numbers()
table (exposures carry a country and a device type), then the readout of a conversion metric
with CUPED split by both, computed from the store (cold) and from the result cache, timed
against a bare scan of the same events.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import connections, transaction
from django.test import Client
from django.test.utils import override_settings

from benchmarks.harness import percentile

ASSIGN = "/api/experiments/assign/"


def _drive(path: str, body: str | None, headers: dict, n: int, queue) -> None:
    connections.close_all()  # a forked child opens its own connections
    client = Client()
    latencies = []
    started = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        if body is None:
            response = client.get(path, **headers)
        else:
            response = client.post(
                path, body.replace("USER", str(i)), content_type="application/json", **headers
            )
        latencies.append(time.perf_counter() - t)
        if response.status_code != 200:
            raise RuntimeError(f"{path} answered {response.status_code}: {response.content[:200]}")
    queue.put((latencies, time.perf_counter() - started))


def _load(path: str, body: str | None, headers: dict, *, n: int, procs: int) -> tuple[float, float]:
    """(requests per second over all processes, p99 latency in seconds)."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    connections.close_all()
    workers = [
        ctx.Process(target=_drive, args=(path, body, headers, n, queue)) for _ in range(procs)
    ]
    for w in workers:
        w.start()
    results = [queue.get(timeout=600) for _ in workers]
    for w in workers:
        w.join()
    latencies = [x for lat, _ in results for x in lat]
    wall = max(elapsed for _, elapsed in results)
    return len(latencies) / wall, percentile(latencies, 99)


def running_experiments(prefix: str = "bench") -> list:
    """Three running two-arm experiments (one targeted), keys `<prefix>-0..2`."""
    from experiments.models import Experiment, Metric, Variant

    metric, _ = Metric.objects.get_or_create(
        key=f"{prefix}-metric", defaults={"name": "Bench", "event": "project_created"}
    )
    made = []
    for i, conditions in enumerate(({}, {"country": {"$in": ["US", "CA"]}}, {})):
        experiment = Experiment.objects.create(
            key=f"{prefix}-{i}",
            name=f"{prefix} {i}",
            status=Experiment.Status.RUNNING,
            coverage=0.9,
            conditions=conditions,
            primary_metric=metric,
        )
        Variant.objects.create(experiment=experiment, key="control", weight=0.5, is_control=True)
        Variant.objects.create(experiment=experiment, key="b", weight=0.5)
        made.append(experiment)
    return made


def bench_assignment(stdout, *, quick: bool) -> tuple[float, float, float, float]:
    from core.models import ApiKey
    from core.services import api_key_create

    n = 500 if quick else 5000
    procs = min(2, os.cpu_count() or 1)
    experiments = running_experiments()
    # No rate limit on the bench's key (0): the figure is the assignment path, not the limit.
    key, raw = api_key_create(name=f"bench-{os.getpid()}", rate_limit_per_second=0)
    try:
        headers = {"HTTP_X_API_KEY": raw}
        body = json.dumps({"user_id": "user-USER", "attributes": {"country": "US"}})
        _load(ASSIGN, body, headers, n=20, procs=1)  # warm up: caches, first connections
        rps, p99 = _load(ASSIGN, body, headers, n=n, procs=procs)
        ref_rps, ref_p99 = _load("/health", None, {}, n=n, procs=procs)
    finally:
        for experiment in experiments:
            metric = experiment.primary_metric
            experiment.delete()
        metric.delete()
        ApiKey.objects.filter(pk=key.pk).delete()
    stdout.write(
        f"assignment API: {rps:,.0f} requests/s, p99 {p99 * 1000:.2f} ms "
        f"({procs} processes x {n} requests, 3 running experiments, exposures captured)"
    )
    stdout.write(
        f"trivial JSON view (/health): {ref_rps:,.0f} requests/s, p99 {ref_p99 * 1000:.2f} ms"
    )
    if settings.DEBUG:
        stdout.write(
            "DEBUG is on (development settings): production runs DEBUG=0, which is faster; "
            "see README, Benchmarks, for the command with production settings"
        )
    return rps, p99, ref_rps, ref_p99


GENERATE = """
INSERT INTO events (uuid, event, user_id, timestamp, properties)
SELECT generateUUIDv4(number), 'experiment_assignment', concat('u', toString(number % {users:UInt64})),
       toDateTime64({start:String}, 3) + toIntervalSecond((number * 7919) % 1209600),
       concat('{"experiment_id":"bench-results","variant":"',
              if(cityHash64(number % {users:UInt64}) % 2 = 0, 'control', 'treatment'),
              '","geo_country":"', ['US','DE','FR','GB','IN','BR','CA','JP','ES','IT','MX','PL',
              'NL','SE','KR'][1 + cityHash64('c', number % {users:UInt64}) % 15],
              '","device_type":"', ['desktop','mobile','tablet'][1 + cityHash64('d', number % {users:UInt64}) % 3],
              '"}')
FROM numbers(OFFSET, COUNT)
"""
GENERATE_CONVERSIONS = """
INSERT INTO events (uuid, event, user_id, timestamp, properties)
SELECT generateUUIDv4(number), 'project_created', concat('u', toString((number * 48271) % {users:UInt64})),
       toDateTime64({start:String}, 3) + toIntervalSecond((number * 104729) % 1296000),
       '{"book_type":"fiction"}'
FROM numbers(OFFSET, COUNT)
"""


def bench_results(stdout, *, quick: bool) -> tuple[float, float]:
    import datetime as dt

    from analytics.store import store
    from analytics.store.cache import cache_invalidate
    from analytics.store.migrate import store_migrate
    from experiments.dimensions import dimensions_parse
    from experiments.models import Experiment, Metric, Variant
    from experiments.results import experiment_results, experiment_results_cached
    from experiments.selectors import ts

    total = 1_000_000 if quick else 10_000_000
    exposures, conversions = int(total * 0.6), int(total * 0.4)
    users = exposures // 2
    workdir = Path(tempfile.mkdtemp(prefix="bench-experiments-"))
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=20)
    try:
        with override_settings(CLICKHOUSE_URL=f"chdb://{workdir}", CLICKHOUSE_QUERY_TIMEOUT=600):
            db = store()
            store_migrate(target=db)
            params = {"users": users, "start": ts(start)}
            t = time.perf_counter()
            chunk = 1_000_000  # each INSERT stays well inside the store's query timeout
            with db.session():
                for sql, rows in ((GENERATE, exposures), (GENERATE_CONVERSIONS, conversions)):
                    for offset in range(0, rows, chunk):
                        # integers from this loop, never input: numbers() takes no parameters
                        count = min(chunk, rows - offset)
                        chunk_sql = sql.replace("OFFSET", str(offset)).replace("COUNT", str(count))
                        db.command(chunk_sql, params)
            stdout.write(f"generated {total:,} events in {time.perf_counter() - t:.1f} s")
            with transaction.atomic():
                experiment = Experiment.objects.create(
                    key="bench-results",
                    name="bench",
                    status=Experiment.Status.RUNNING,
                    started_at=start,
                    primary_metric=Metric.objects.create(
                        key="bench-created", name="Bench", event="project_created"
                    ),  # a conversion metric with CUPED on (the default)
                    sequential_testing=True,
                    dimensions=["country", "device_type"],
                    preregistered_dimensions=["country", "device_type"],
                )
                Variant.objects.create(
                    experiment=experiment, key="control", weight=0.5, is_control=True
                )
                Variant.objects.create(experiment=experiment, key="treatment", weight=0.5)
                dimensions = dimensions_parse(experiment.dimensions)
                experiment_results(experiment)  # first run: opens the store, warms caches
                plain = _timed(lambda: experiment_results(experiment), 3)
                # Cold: computed from the store (the result cache bypassed), every run.
                cold = _timed(lambda: experiment_results(experiment, dimensions), 3)
                result = experiment_results(experiment, dimensions)
                cache_invalidate()
                experiment_results_cached(experiment=experiment, dimensions=dimensions)
                cached = _timed(
                    lambda: experiment_results_cached(experiment=experiment, dimensions=dimensions),
                    20,
                )
                transaction.set_rollback(True)
            scans = _timed(
                lambda: db.query("SELECT uniqExact(user_id) AS u, count() AS n FROM events"), 3
            )
            db.release()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        for suffix in (".lock", ".lock.waiting"):  # the embedded store's lock files sit beside it
            Path(f"{workdir}{suffix}").unlink(missing_ok=True)
    cuped = result["metrics"][0]["cuped"]
    assert cuped["applied"], "the bench's metric must have CUPED applied"
    assert [d["name"] for d in result["dimensions"]] == ["country", "device_type"]
    took, scan = statistics.median(cold), statistics.median(scans)
    users_seen = sum(result["srm"]["users"].values())
    stdout.write(
        f"results on {total:,} exposure and conversion events ({users_seen:,} exposed users), "
        f"CUPED on (variance reduction {cuped['variance_reduction']:.1%}) and two dimensions "
        f"(country: {len(result['dimensions'][0]['values'])} values, device type: "
        f"{len(result['dimensions'][1]['values'])}): cold (computed from the store) median "
        f"{took:.2f} s over 3 runs (goal 1 s); cached median "
        f"{statistics.median(cached) * 1000:.1f} ms over 20; without dimensions "
        f"{statistics.median(plain):.2f} s; a bare scan (uniqExact users, count) takes "
        f"{scan:.2f} s"
    )
    return took, scan


def _timed(call, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        call()
        out.append(time.perf_counter() - t)
    return out


def bench_experiments(stdout, *, quick: bool = False, aa: bool = False) -> None:
    if aa:
        bench_aa(stdout, quick=quick)
        return
    from core.embedded import ensure_embedded_redis

    ensure_embedded_redis()  # the result cache and the event buffer, as `run` does
    took, scan = bench_results(stdout, quick=quick)
    rps, p99, ref_rps, _ = bench_assignment(stdout, quick=quick)
    stdout.write(
        f"results (CUPED, two dimensions, cold): {took:.2f} s, ratio {took / scan:.1f} vs a bare "
        "scan of the events"
    )
    stdout.write(
        f"experiments: {rps:,.0f} assignments/s (p99 {p99 * 1000:.1f} ms), "
        f"ratio {rps / ref_rps:.2f} vs trivial JSON view"
    )


def _aa_looks(rng, *, experiments: int, hours: int, users_per_hour: float, rate: float):
    """Cumulative users and conversions per arm at every hourly look of A/A experiments
    (both arms convert at `rate`): arrays of shape (experiments, hours)."""
    arrivals = rng.poisson(users_per_hour, size=(2, experiments, hours))
    conversions = rng.binomial(arrivals, rate)
    return np.cumsum(arrivals, axis=2), np.cumsum(conversions, axis=2)


def bench_aa(stdout, *, quick: bool) -> None:
    """A/A experiments looked at every hour for 30 days, through each engine's own decision
    rule, with the library's formulas (experiments.stats) on every look at once.

    Frequentist: the share of experiments that ever show p < alpha; sequential (the engine)
    against a fixed-horizon Welch test peeked at the same hours (the reference). Bayesian:
    the share whose decision rule (chance to win >= 1 - alpha and risk under the threshold)
    ever ships the variant, against chance to win >= 1 - alpha alone."""
    from experiments import stats

    experiments = 200 if quick else 1000
    hours, users_per_hour, rate, alpha = 30 * 24, 50.0, 0.10, 0.05
    tuning = 2 * users_per_hour * hours  # planned at the 30-day sample, as experiment_start does
    rng = np.random.default_rng(20261205)
    t = time.perf_counter()
    n, x = _aa_looks(
        rng, experiments=experiments, hours=hours, users_per_hour=users_per_hour, rate=rate
    )
    (nc, nt), (xc, xt) = n, x
    ok = (nc >= 100) & (nt >= 100) & (xc > 0) & (xt > 0)  # what the engines need to answer
    mc, mt = xc / np.maximum(nc, 1), xt / np.maximum(nt, 1)
    mc_safe = np.where(ok, mc, 0.5)
    lift, variance = stats.relative_lift(
        mc_safe, mc * (1 - mc), np.maximum(nc, 1), mt, mt * (1 - mt), np.maximum(nt, 1)
    )
    variance = np.where(ok, variance, 1.0)
    sequential_p = stats.sequential_p_value(
        estimate=lift, variance=variance, n=nc + nt, alpha=alpha, tuning=tuning
    )
    vc, vt = mc * (1 - mc) / np.maximum(nc, 1), mt * (1 - mt) / np.maximum(nt, 1)
    dof = (vc + vt) ** 2 / np.maximum(
        vc**2 / np.maximum(nc - 1, 1) + vt**2 / np.maximum(nt - 1, 1), 1e-300
    )
    fixed_p = 2 * stats.sps.t.sf(np.abs(lift) / np.sqrt(variance), dof)
    post = stats.posterior(lift=lift, variance=variance, alpha=alpha)
    threshold = 0.0025
    ships = (post.chance_to_win >= 1 - alpha) & (post.risk < threshold) & ok
    sequential_fpr = ((sequential_p < alpha) & ok).any(axis=1).mean()
    fixed_fpr = ((fixed_p < alpha) & ok).any(axis=1).mean()
    fixed_end = ((fixed_p[:, -1] < alpha) & ok[:, -1]).mean()
    false_ship = ships.any(axis=1).mean()
    # What auto-conclusion does: looks only after the minimum runtime (7 days by default).
    after_minimum = ships[:, 7 * 24 :].any(axis=1).mean()
    sequential_after = ((sequential_p < alpha) & ok)[:, 7 * 24 :].any(axis=1).mean()
    ctw_only = ((post.chance_to_win >= 1 - alpha) & ok).any(axis=1).mean()
    took = time.perf_counter() - t
    mc_error = 2 * math.sqrt(alpha * (1 - alpha) / experiments)
    stdout.write(
        f"A/A: {experiments:,} experiments per engine, {hours} hourly looks (30 days), "
        f"{users_per_hour:.0f} users per arm per hour, {rate:.0%} conversion in both arms; "
        f"{took:.1f} s"
    )
    stdout.write(
        f"frequentist, sequential (tuned to {tuning:,.0f} users): {sequential_fpr:.1%} of A/A "
        f"experiments ever significant (nominal {alpha:.0%}; Monte Carlo error +-{mc_error:.1%})"
    )
    stdout.write(
        f"frequentist, fixed horizon: {fixed_end:.1%} significant when read once at day 30, "
        f"{fixed_fpr:.1%} when peeked at every hour"
    )
    stdout.write(
        f"Bayesian (prior sd 0.3): decision rule (chance to win >= {1 - alpha:.0%} and risk < "
        f"{threshold:.2%}) ever ships the variant in {false_ship:.1%}; chance to win >= "
        f"{1 - alpha:.0%} alone at some look in {ctw_only:.1%}"
    )
    stdout.write(
        f"auto-conclusion looks only after the 7-day minimum runtime: sequential "
        f"{sequential_after:.1%}, Bayesian decision rule {after_minimum:.1%}"
    )
    stdout.write(
        f"experiments: sequential false-positive rate {sequential_fpr:.1%} under hourly peeking, "
        f"ratio {sequential_fpr / fixed_fpr:.2f} vs {fixed_fpr:.1%} for a fixed-horizon test "
        f"peeked at; Bayesian false-ship rate {false_ship:.1%}"
    )
