"""`bench sdk`: what the maintained SDKs cost against our own endpoints, in the same run.

- Assignment: local evaluation in the GrowthBook Python SDK (payload fetched once from
  `/api/features/<key>`) against a round trip to `POST /api/experiments/assign/` over HTTP
  (keep-alive) to the ASGI app served on loopback, per assignment.
- Capture: PostHog server-SDK batches (`POST /batch/`, 1,000 events each, gzip as
  posthog-python sends them) against the same events in our own format at `POST /api/events/`
  (gzip too), through the full Django stack with the test client (no HTTP server competing
  for the cores), events per second into the Redis buffer (the writer is not part of either).
- Identity: on the bench store of `bench queries` (~10M events; `--quick` ~200k), the writer's
  write of 1,000 events of which 100 are `$identify` links of anonymous ids with 5 stored events
  each against the write of 1,000 events without a link, the link lookup every write makes, and
  the move pass that then gives those ids' events to their persons.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import time
import uuid

from django.test import Client
from django.test.utils import override_settings

from benchmarks.harness import serve_asgi_in_thread

BATCH = 1000


def _posthog_batch(token: str, events: list[dict]) -> bytes:
    batch = [
        {
            "event": e["event"],
            "distinct_id": e["user_id"],
            "properties": {**e["properties"], "$lib": "posthog-python", "$lib_version": "7"},
            "timestamp": e["timestamp"],
            "uuid": e["uuid"],
            "type": "capture",
        }
        for e in events
    ]
    sent_at = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    body = {"batch": batch, "sent_at": sent_at, "api_key": token}
    return gzip.compress(json.dumps(body).encode())


def _events(n: int, rng: random.Random) -> list[dict]:
    return [
        {
            "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "event": rng.choice(["video_rendered", "project_created", "$pageview"]),
            "user_id": f"user-{rng.randrange(5000)}",
            "timestamp": f"2026-12-0{1 + i % 5}T{i % 24:02d}:15:00+00:00",
            "properties": {"video_style": rng.choice(["noir", "anime"]), "n": i},
        }
        for i in range(n)
    ]


def _capture_rate(client: Client, path: str, bodies: list[bytes], **headers) -> float:
    started = time.perf_counter()
    events = 0
    for body in bodies:
        response = client.post(
            path, body, content_type="application/json", HTTP_CONTENT_ENCODING="gzip", **headers
        )
        if response.status_code not in (200, 202):
            raise RuntimeError(f"{path} answered {response.status_code}: {response.content[:200]}")
        events += response.json()["accepted"]
    return events / (time.perf_counter() - started)


def bench_capture(stdout, *, quick: bool) -> tuple[float, float]:
    from analytics.events.buffer import buffer_clear
    from core.models import ApiKey
    from core.services import api_key_create

    batches = 10 if quick else 60
    rng = random.Random(21)
    publishable, token = api_key_create(
        name=f"bench-sdk-app-{os.getpid()}", kind="publishable", by=None
    )
    secret, raw = api_key_create(name=f"bench-sdk-server-{os.getpid()}", by=None)
    prefix = f"bench:sdk:{os.getpid()}"
    try:
        with override_settings(EVENTS_REDIS_PREFIX=prefix, API_KEY_RATE_LIMIT=0):
            client = Client()
            ours = [_events(BATCH, rng) for _ in range(batches)]
            theirs = [_events(BATCH, rng) for _ in range(batches)]
            own_bodies = [gzip.compress(json.dumps({"batch": b}).encode()) for b in ours]
            wire_bodies = [_posthog_batch(token, b) for b in theirs]
            # warm-up of both paths, then alternate rounds so drift hits both alike
            _capture_rate(client, "/api/events/", own_bodies[:2], HTTP_X_API_KEY=raw)
            _capture_rate(client, "/batch/", wire_bodies[:2])
            own, wire = [], []
            for r in range(3):
                part = slice(r * batches // 3, (r + 1) * batches // 3)
                own.append(
                    _capture_rate(client, "/api/events/", own_bodies[part], HTTP_X_API_KEY=raw)
                )
                wire.append(_capture_rate(client, "/batch/", wire_bodies[part]))
            buffer_clear()
    finally:
        ApiKey.objects.filter(pk__in=[publishable.pk, secret.pk]).delete()
    own_rate, wire_rate = max(own), max(wire)
    stdout.write(
        f"capture, {batches} gzip batches of {BATCH:,} events each path (best of 3 rounds): "
        f"PostHog /batch/ {wire_rate:,.0f} events/s, /api/events/ {own_rate:,.0f} events/s"
    )
    return wire_rate, own_rate


def bench_assignment(stdout, *, quick: bool) -> tuple[float, float]:
    import requests
    from growthbook import GrowthBook

    from benchmarks.experiments import running_experiments
    from core.models import ApiKey
    from core.services import api_key_create

    n = 300 if quick else 2000
    made = running_experiments("bench-sdk")
    metric = made[0].primary_metric
    publishable, token = api_key_create(
        name=f"bench-sdk-pk-{os.getpid()}", kind="publishable", by=None
    )
    server, thread, port = serve_asgi_in_thread()
    host = f"http://127.0.0.1:{port}"
    try:
        with override_settings(API_KEY_RATE_LIMIT=0):
            gb = GrowthBook(api_host=host, client_key=token, attributes={"id": "warm"})
            gb.load_features()
            keys = [e.key for e in made]
            started = time.perf_counter()
            for i in range(n):
                gb.set_attributes({"id": f"user-{i}", "country": "US"})
                for key in keys:
                    gb.eval_feature(key)
            local = (time.perf_counter() - started) / (n * len(keys))
            gb.destroy()
            session = requests.Session()
            session.headers["X-Api-Key"] = token
            url = f"{host}/api/experiments/assign/"
            session.post(url, json={"user_id": "warm"}).raise_for_status()
            started = time.perf_counter()
            for i in range(n):
                response = session.post(
                    url, json={"user_id": f"user-{i}", "attributes": {"country": "US"}}
                )
                response.raise_for_status()
            remote = (time.perf_counter() - started) / (n * len(keys))
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        for experiment in made:
            experiment.delete()
        metric.delete()
        ApiKey.objects.filter(pk=publishable.pk).delete()
    stdout.write(
        f"assignment, {n:,} users x {len(keys)} experiments: GrowthBook SDK local evaluation "
        f"{local * 1e6:,.1f} µs per assignment, /api/experiments/assign/ round trip "
        f"{remote * 1e6:,.1f} µs per assignment (one call assigns all {len(keys)}), "
        f"ratio {remote / local:,.0f}x"
    )
    return local, remote


IDENTITY_PREFIX = "bench-identity-"
LINKS, ANON_EVENTS = 100, 5


def _identity_round(r: int) -> tuple[float, float, float, float]:
    """(writing 1,000 events without links, the same with LINKS links recorded, the move pass
    of those links, the link lookup alone) in seconds, as the writer's loop spends them."""
    import datetime as dt

    from analytics.events.identity import identity_apply, identity_moves_run
    from analytics.events.services import events_capture
    from analytics.events.writer import EventWriter
    from analytics.store import store
    from analytics.store.bulk import rows_insert

    at = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    ids = [f"{IDENTITY_PREFIX}{r}-{k}" for k in range(BATCH)]
    writer = EventWriter(consumer=f"bench-identity-{os.getpid()}")
    db = store()

    def plain(tag: str) -> list[dict]:
        return [{"event": "video_rendered", "user_id": f"{u}-{tag}", "timestamp": at} for u in ids]

    def write(events: list[dict]) -> float:
        events_capture(events=events)
        batch = writer.read_new(block_ms=None)
        started = time.perf_counter()
        writer.write_or_divide(batch)
        return time.perf_counter() - started

    rows_insert(
        table="events",
        rows=[
            {
                "uuid": str(uuid.uuid4()),
                "event": "session_start",
                "user_id": f"{IDENTITY_PREFIX}{r}-anon-{k}",
                "timestamp": at - dt.timedelta(hours=j),
                "properties": "{}",
            }
            for k in range(LINKS)
            for j in range(ANON_EVENTS)
        ],
    )
    without = write(plain("a"))
    with_links = write(
        plain("b")[LINKS:]
        + [
            {
                "event": "$identify",
                "user_id": f"{IDENTITY_PREFIX}{r}-user-{k}",
                "timestamp": at,
                "properties": {"$anon_distinct_id": f"{IDENTITY_PREFIX}{r}-anon-{k}"},
            }
            for k in range(LINKS)
        ]
    )
    started = time.perf_counter()
    identity_moves_run(db=db, force=True)
    move = time.perf_counter() - started
    started = time.perf_counter()
    with db.session():
        identity_apply(db=db, links=[], user_ids={f"{u}-b" for u in ids})
    lookup = time.perf_counter() - started
    moved = db.query(
        "SELECT count() AS n FROM events WHERE user_id LIKE {p:String}",
        {"p": f"{IDENTITY_PREFIX}{r}-user-%"},
    )[0]["n"]
    if moved != LINKS * (ANON_EVENTS + 1):
        raise RuntimeError(f"identity moved {moved} events, expected {LINKS * (ANON_EVENTS + 1)}")
    return without, with_links, move, lookup


def _identity_cleanup() -> None:
    from analytics.events.identity import PER_USER_TABLES
    from analytics.store import store

    db = store()
    like = {"p": f"{IDENTITY_PREFIX}%"}
    with db.session():
        for table in ("events", "users", "person_distinct_ids", *PER_USER_TABLES):
            db.command(f"DELETE FROM {table} WHERE user_id LIKE {{p:String}}", like, timeout=600)


def bench_identity(stdout, *, quick: bool) -> tuple[float, float]:
    """Runs on the bench store of `bench queries` under VAR_DIR, never on the configured one;
    the events it adds are deleted afterwards, so that store stays the bench's history."""
    import statistics

    from django.conf import settings

    from analytics.store.migrate import store_migrate
    from benchmarks.analytics_queries import QUICK_USERS, USERS, _load, bench_spec

    bench_store = f"chdb://{settings.VAR_DIR / 'bench-chdb'}"
    prefix = f"bench:identity:{os.getpid()}"
    with override_settings(CLICKHOUSE_URL=bench_store, EVENTS_REDIS_PREFIX=prefix):
        store_migrate()
        spec, _start, _end = bench_spec(QUICK_USERS if quick else USERS)
        loaded = _load(stdout, spec)
        try:
            rounds = [_identity_round(r) for r in range(3)]
        finally:
            _identity_cleanup()
    without, linked, move, lookup = (statistics.median(r[i] for r in rounds) for i in range(4))
    stdout.write(
        f"identity, store of {loaded:,} events, median of 3 rounds: the writer writes "
        f"{BATCH:,} events with {LINKS} $identify links in {linked * 1000:,.0f} ms, without "
        f"links in {without * 1000:,.0f} ms (ratio {linked / without:.2f}; the link lookup every "
        f"write makes {lookup * 1000:,.1f} ms); its move pass of the {LINKS} linked ids "
        f"({LINKS * ANON_EVENTS} anonymous events) {move * 1000:,.0f} ms, at most every "
        f"IDENTITY_MOVE_SECONDS"
    )
    return linked, without


def bench_sdk(stdout, *, quick: bool = False) -> None:
    from core.embedded import ensure_embedded_redis

    ensure_embedded_redis()
    bench_identity(stdout, quick=quick)
    bench_assignment(stdout, quick=quick)
    wire, own = bench_capture(stdout, quick=quick)
    stdout.write(f"sdk: {wire:,.0f} PostHog batch events/s, ratio {wire / own:.2f} vs /api/events/")
