"""`bench experiments`: assignment API throughput and p99 against a trivial JSON view, and
results on millions of exposure and conversion events.

Assignment: one client process per core (at most 2) drives the full Django stack (API key
authentication, validation, hashing, exposure capture into the Redis buffer) through the
test client, so no HTTP server or load generator competes for the cores; the reference is
`/health`, a trivial JSON view, measured the same way in the same run.
Results: events generated inside a temporary embedded store with ClickHouse's numbers()
table, then the readout's SQL and statistics timed against a bare scan of the same events.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

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


def _bench_experiments() -> list:
    from experiments.models import Experiment, Metric, Variant

    metric, _ = Metric.objects.get_or_create(
        key="bench-metric", defaults={"name": "Bench", "event": "project_created"}
    )
    made = []
    for i, conditions in enumerate(({}, {"country": {"$in": ["US", "CA"]}}, {})):
        experiment = Experiment.objects.create(
            key=f"bench-{i}",
            name=f"Bench {i}",
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
    experiments = _bench_experiments()
    key, raw = api_key_create(name=f"bench-{os.getpid()}")
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
              if(cityHash64(number % {users:UInt64}) % 2 = 0, 'control', 'treatment'), '"}')
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
    from analytics.store.migrate import store_migrate
    from experiments.models import Experiment, Metric, Variant
    from experiments.results import experiment_results
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
                    ),
                    sequential_testing=True,
                )
                Variant.objects.create(
                    experiment=experiment, key="control", weight=0.5, is_control=True
                )
                Variant.objects.create(experiment=experiment, key="treatment", weight=0.5)
                experiment_results(experiment)  # first run: opens the store, warms caches
                runs = []
                for _ in range(3):
                    t = time.perf_counter()
                    result = experiment_results(experiment)
                    runs.append(time.perf_counter() - t)
                transaction.set_rollback(True)
            scans = []
            for _ in range(3):
                t = time.perf_counter()
                db.query("SELECT uniqExact(user_id) AS u, count() AS n FROM events")
                scans.append(time.perf_counter() - t)
            db.release()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        for suffix in (".lock", ".lock.waiting"):  # the embedded store's lock files sit beside it
            Path(f"{workdir}{suffix}").unlink(missing_ok=True)
    took, scan = statistics.median(runs), statistics.median(scans)
    users_seen = sum(result["srm"]["users"].values())
    stdout.write(
        f"results on {total:,} exposure and conversion events ({users_seen:,} exposed users): "
        f"median {took:.2f} s over 3 runs; a bare scan (uniqExact users, count) takes {scan:.2f} s"
    )
    return took, scan


def bench_experiments(stdout, *, quick: bool = False) -> None:
    took, scan = bench_results(stdout, quick=quick)
    rps, p99, ref_rps, _ = bench_assignment(stdout, quick=quick)
    stdout.write(f"results: {took:.2f} s, ratio {took / scan:.1f} vs a bare scan of the events")
    stdout.write(
        f"experiments: {rps:,.0f} assignments/s (p99 {p99 * 1000:.1f} ms), "
        f"ratio {rps / ref_rps:.2f} vs trivial JSON view"
    )
