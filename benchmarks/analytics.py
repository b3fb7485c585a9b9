"""`bench ingest`: HTTP batches of events to rows visible in the analytics store, against raw
bulk inserts into the same store. The events are the product simulation's, as its users' apps
would send them (`analytics.simulation.capture_payloads`)."""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import msgspec
import psutil
from django.conf import settings

from analytics.simulation import GenerationSpec, capture_payloads
from benchmarks.harness import free_port, percentile
from core.processes import MANAGE_PY

BATCH = 1000
# The simulated product's users over the last month: ~130,000 events in time order, of which
# the raw inserts take the first 100,000 and the HTTP batches the next 20,000.
SIMULATED_USERS = 10_000


def _raw_rows(events: list[dict]) -> bytes:
    """The same events as finished rows, as the writer would insert them."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.000")
    encode = msgspec.json.Encoder().encode
    return b"\n".join(
        encode(
            {
                "uuid": str(uuid.uuid4()),
                "event": e["event"],
                "user_id": e["user_id"],
                "timestamp": e["timestamp"][:19].replace("T", " "),
                "properties": encode(e["properties"]).decode(),
                "session_id": e.get("session_id", ""),
                "page_url": "",
                "user_agent": e["user_agent"],
                "ip": e["ip"],
                "received_at": now,
            }
        )
        for e in events
    )


def _cpu(process: psutil.Process) -> float:
    """CPU seconds (user + system, all threads) a process has used so far."""
    times = process.cpu_times()
    return times.user + times.system


def _wait_http(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the web process did not start")


def _post_all(port: int, bodies: list[bytes], total_batches: int, key: str, threads: int) -> list:
    """Send `total_batches` POSTs (cycling the prepared bodies) over keep-alive connections."""
    counter = iter(range(total_batches))
    lock = threading.Lock()
    failures: list = []

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Content-Type": "application/json", "X-Api-Key": key, "User-Agent": "bench"}
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            conn.request("POST", "/api/events/", body=bodies[i % len(bodies)], headers=headers)
            response = conn.getresponse()
            payload = response.read()
            if response.status != 202:
                failures.append((response.status, payload[:200]))

    workers = [threading.Thread(target=client) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return failures


def bench_ingest(stdout, *, quick: bool = False) -> None:
    """End-to-end ingestion (HTTP batches of 1,000 → web → Redis → writer → rows visible)
    against raw bulk JSONEachRow inserts into the same store, in the same run."""
    import redis as redis_lib

    from analytics.events.buffer import BufferKeys
    from analytics.store import store_for_url
    from analytics.store.migrate import store_migrate
    from core.embedded import ensure_embedded_redis
    from core.models import ApiKey
    from core.redis import redis_client
    from core.services import api_key_create

    ensure_embedded_redis()  # when REDIS_URL is unset, as `run` does

    total = 100_000 if quick else 1_000_000
    me = psutil.Process()
    batches = total // BATCH
    spec = GenerationSpec(users=SIMULATED_USERS, months=1, seed=42)
    simulated = list(capture_payloads(spec, limit=100_000 + 20 * BATCH))
    tag = f"{os.getpid()}"
    path = Path(settings.VAR_DIR) / "bench" / f"ingest-{tag}"
    shutil.rmtree(path, ignore_errors=True)
    url = f"chdb://{path}"
    db = store_for_url(url)
    store_migrate(target=db)
    prefix = f"bench:ingest:{tag}"
    keys = BufferKeys(prefix)
    redis_conn = redis_client()
    key, raw_key = api_key_create(name=f"bench-ingest-{tag}", by=None)
    children: list[subprocess.Popen] = []
    try:
        # 1. The physical limit: bulk inserts of finished rows, 100k per statement.
        sample = simulated[:100_000]
        payloads = [_raw_rows(sample) for _ in range(total // 100_000)]
        cpu0, t0 = _cpu(me), time.perf_counter()
        for payload in payloads:
            db.insert_json_each_row("events", payload)
        raw_seconds = time.perf_counter() - t0
        raw_cpu = _cpu(me) - cpu0
        raw_rate = total / raw_seconds
        assert db.query("SELECT count() AS n FROM events")[0]["n"] == total
        db.command("TRUNCATE TABLE events")
        del payloads
        stdout.write(
            f"raw bulk insert: {total:,} rows in {raw_seconds:.2f} s = {raw_rate:,.0f} rows/s"
        )

        # 2. The real path: uvicorn (the web process of `run`), the events_writer process.
        port = free_port()
        env = {
            **os.environ,
            "CLICKHOUSE_URL": url,
            "EVENTS_REDIS_PREFIX": prefix,
            "API_KEY_RATE_LIMIT": "0",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "REDIS_URL": settings.REDIS_URL,
        }
        web = [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host",
               "127.0.0.1", "--port", str(port), "--lifespan", "off", "--no-access-log",
               "--log-level", "warning"]  # fmt: skip
        writer = [sys.executable, str(MANAGE_PY), "events_writer"]
        for argv in (web, writer):
            children.append(
                subprocess.Popen(argv, env=env, cwd=settings.BASE_DIR, stdout=subprocess.DEVNULL)
            )
        _wait_http(port)
        bodies = [
            msgspec.json.encode({"batch": simulated[start : start + BATCH]})
            for start in range(100_000, len(simulated), BATCH)
        ]
        # Warm up (imports, parsers, the first store open) outside the measurement.
        _post_all(port, bodies[:1], 2, raw_key, 1)
        while redis_conn.xlen(keys.stream):
            time.sleep(0.05)
        db.command("TRUNCATE TABLE events")
        redis_conn.delete(keys.lag)

        procs = [psutil.Process(c.pid) for c in children]
        cpu_before = [_cpu(p) for p in procs]
        t0 = time.perf_counter()
        failures = _post_all(port, bodies, batches, raw_key, threads=3)
        posted = time.perf_counter() - t0
        # the writer deletes an entry once its rows are inserted
        while redis_conn.xlen(keys.stream):
            time.sleep(0.02)
        visible = time.perf_counter() - t0
        web_cpu, writer_cpu = (_cpu(p) - b for p, b in zip(procs, cpu_before, strict=True))
        count = db.query("SELECT uniqExact(uuid) AS n FROM events")[0]["n"]
        lags = sorted(float(x) / 1000 for x in redis_conn.lrange(keys.lag, 0, -1))
        if failures or count != total:
            raise RuntimeError(f"lost events: {count} of {total}, failures {failures[:3]}")
        e2e = total / visible
        p95 = percentile(lags, 95)
        stdout.write(
            f"HTTP capture: {total:,} events in {batches:,} batches of {BATCH} over 3 "
            f"connections, all 202 after {posted:.2f} s ({total / posted:,.0f} events/s)"
        )
        stdout.write(
            f"end-to-end: all {count:,} visible after {visible:.2f} s = {e2e:,.0f} events/s"
        )
        stdout.write(
            f"visibility lag (buffer append → rows in the store) over {len(lags)} batches: "
            f"median {statistics.median(lags):.2f} s, p95 {p95:.2f} s, max {lags[-1]:.2f} s"
        )
        per_event = (web_cpu + writer_cpu) / total * 1e6
        stdout.write(
            f"CPU per event (load-independent): web {web_cpu / total * 1e6:.1f} µs + writer "
            f"{writer_cpu / total * 1e6:.1f} µs = {per_event:.1f} µs; raw insert "
            f"{raw_cpu / total * 1e6:.1f} µs. Load average during the run: "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        )
        stdout.write(
            f"ingest: {e2e:,.0f} events/s end-to-end (p95 lag {p95:.2f} s), "
            f"ratio {e2e / raw_rate:.2f} vs raw bulk insert {raw_rate:,.0f} rows/s"
        )
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
        with contextlib.suppress(redis_lib.RedisError):
            redis_conn.delete(*keys.all())
        ApiKey.objects.filter(pk=key.pk).delete()
        db.release()
        shutil.rmtree(path, ignore_errors=True)
        for suffix in (".lock", ".lock.waiting"):
            Path(str(path) + suffix).unlink(missing_ok=True)
