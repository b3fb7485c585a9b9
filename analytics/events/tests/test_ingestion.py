"""The durable path through the real Redis and the real store: exactly-once counting when the
writer retries, dies or finds the store down; the users dimension; the writer process."""

import itertools
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest
from django.conf import settings

from analytics.events.buffer import buffer_status
from analytics.events.selectors import EventFilter, events_latest
from analytics.events.services import events_capture, events_flush
from analytics.events.tests.conftest import make_event
from analytics.events.writer import EventWriter
from analytics.store import StoreUnavailable, store_for_url

pytestmark = pytest.mark.django_db

# Nothing listens here (our port range): a ClickHouse server that is down.
DOWN_URL = "clickhouse://default:@127.0.0.1:8299/default"


def capture(n: int, start: int = 0) -> list[str]:
    events = [make_event(i, uuid=str(uuid.uuid4())) for i in range(start, start + n)]
    result = events_capture(events=events)
    assert result.accepted == n
    return result.uuids


def raw_and_distinct(db) -> tuple[int, int]:
    row = db.query("SELECT count() AS raw, uniqExact(uuid) AS distinct_ FROM events")[0]
    return row["raw"], row["distinct_"]


def test_duplicate_uuids_are_counted_once_by_queries(event_buffer, analytics_store):
    event = make_event(3, uuid=str(uuid.uuid4()))
    events_capture(events=[event])
    events_flush()
    events_capture(events=[event])  # a client retry after a lost 202
    events_flush()
    assert raw_and_distinct(analytics_store) == (2, 1)  # the table holds both copies ...
    page = events_latest(filters=EventFilter(), limit=10)
    assert page.count == 1  # ... the API counts and lists the uuid once
    assert [r["uuid"] for r in page.results] == [event["uuid"]]
    analytics_store.command("OPTIMIZE TABLE events FINAL")
    assert raw_and_distinct(analytics_store) == (1, 1)  # and a merge collapses them


def test_writer_dead_between_read_and_insert_is_redelivered(event_buffer, analytics_store):
    uuids = capture(300)
    dying = EventWriter(consumer="dies-after-read")
    batch = dying.read_new(block_ms=None)
    assert batch.count == 300
    del dying  # it read the entries and died: nothing inserted, nothing acknowledged
    assert buffer_status().pending_entries == 1
    rescuer = EventWriter(consumer="rescuer", claim_idle_ms=0)
    assert rescuer.flush() == 300
    assert raw_and_distinct(analytics_store) == (300, 300)
    stored = {r["u"] for r in analytics_store.query("SELECT toString(uuid) AS u FROM events")}
    assert stored == set(uuids)
    assert buffer_status().entries == 0


def test_writer_dead_between_insert_and_ack_inserts_nothing_twice(event_buffer, analytics_store):
    capture(250)
    dying = EventWriter(consumer="dies-after-insert")
    batch = dying.read_new(block_ms=None)
    analytics_store.insert_json_each_row("events", b"\n".join(e.rows for e in batch.entries))
    del dying  # inserted, then died before XACK
    capture(50, start=250)
    rescuer = EventWriter(consumer="rescuer", claim_idle_ms=0)
    assert rescuer.flush() == 50  # the claimed 250 were already there: dropped, not re-inserted
    assert raw_and_distinct(analytics_store) == (300, 300)


def test_store_down_keeps_the_buffer_then_every_event_lands_once(event_buffer, analytics_store):
    uuids = capture(200)
    down = EventWriter(consumer="w1", target=store_for_url(DOWN_URL))
    for _ in range(3):  # a real connection refused each time
        with pytest.raises(StoreUnavailable):
            down.flush()
    status = buffer_status()
    assert (status.waiting_events, status.pending_entries) == (200, 1)
    uuids += capture(100, start=200)  # capture keeps working while the store is down
    back = EventWriter(consumer="w1")  # the same writer once the store is back
    assert back.flush() == 300
    assert raw_and_distinct(analytics_store) == (300, 300)
    stored = {r["u"] for r in analytics_store.query("SELECT toString(uuid) AS u FROM events")}
    assert stored == set(uuids)


def test_writer_loop_retries_with_backoff_while_the_store_is_down(event_buffer, analytics_store):
    capture(20)
    writer = EventWriter(consumer="looping", target=store_for_url(DOWN_URL))
    attempts = []
    original = writer.write

    def counting_write(batch):
        attempts.append(time.monotonic())
        return original(batch)

    writer.write = counting_write
    stop = threading.Event()
    thread = threading.Thread(target=writer.run, args=(stop,), kwargs={"block_ms": 100})
    thread.start()
    time.sleep(2.5)
    stop.set()
    thread.join(timeout=15)
    assert 2 <= len(attempts) <= 5  # 0.5 s, 1 s, 2 s ... not a busy loop
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert gaps == sorted(gaps)
    assert buffer_status().waiting_events == 20
    assert EventWriter(consumer="looping").flush() == 20


def test_a_batch_the_store_refuses_is_dead_lettered_without_blocking_others(
    event_buffer, analytics_store
):
    from analytics.events.buffer import Chunk, buffer_append

    capture(10)
    buffer_append(
        [Chunk(b'{"uuid":"00000000-0000-0000-0000-000000000001","timestamp":"nope"}', 1, b"[]")]
    )
    capture(10, start=10)
    assert events_flush() == 20
    status = buffer_status()
    assert (status.entries, status.dead_entries) == (0, 1)


def test_users_dimension_follows_signup_and_subscription_events(event_buffer, analytics_store):
    events_capture(
        events=[
            make_event(
                0,
                event="signup",
                user_id="ann",
                timestamp="2026-01-05T10:00:00Z",
                properties={"signup_source": "ads"},
                ip="81.2.69.160",
            ),
            make_event(
                1,
                event="subscription_upgraded",
                user_id="ann",
                timestamp="2026-02-01T00:00:00Z",
                properties={"tier": "pro"},
            ),
        ]
    )
    events_flush()
    # A late, older downgrade must not override the newer upgrade.
    events_capture(
        events=[
            make_event(
                2,
                event="subscription_downgraded",
                user_id="ann",
                timestamp="2026-01-20T00:00:00Z",
                properties={"tier": "basic"},
            ),
        ]
    )
    events_flush()
    rows = analytics_store.query(
        "SELECT user_id, signup_at, tier, country, signup_source FROM users FINAL"
    )
    assert rows == [
        {
            "user_id": "ann",
            "signup_at": "2026-01-05 10:00:00.000",
            "tier": "pro",
            "country": "GB",
            "signup_source": "ads",
        }
    ]
    events_capture(events=[make_event(3, user_id="ann")])  # enrichment reads the tier
    events_flush()
    tier = analytics_store.query(
        "SELECT user_tier FROM events WHERE JSONExtractInt(properties, 'n') = 3"
    )
    assert tier == [{"user_tier": "pro"}]


def test_users_written_straight_into_the_store_are_known_to_enrichment(
    event_buffer, analytics_store
):
    from analytics.events.users import user_tiers_refresh

    analytics_store.insert(
        "users",
        [
            {
                "user_id": "bulk-1",
                "signup_at": "2026-01-01 00:00:00",
                "tier": "enterprise",
                "updated_at": "2026-01-01 00:00:00",
            }
        ],
    )
    assert user_tiers_refresh(db=analytics_store, force=True) == 1
    events_capture(events=[make_event(0, user_id="bulk-1")])
    events_flush()
    assert analytics_store.query("SELECT user_tier FROM events") == [{"user_tier": "enterprise"}]


@pytest.mark.slow
@pytest.mark.skipif(not settings.CLICKHOUSE_URL.startswith("chdb://"), reason="embedded store")
def test_writer_process_killed_mid_flush_loses_and_duplicates_nothing(
    event_buffer, analytics_store
):
    """The real `manage.py events_writer` process, SIGKILLed while it works through a backlog."""
    uuids = []
    for round_ in range(20):
        uuids += capture(1000, start=round_ * 1000)
    env = {**os.environ, "EVENTS_FLUSH_SIZE": "2000"}  # many small inserts: a kill lands mid-way
    child = subprocess.Popen(
        [sys.executable, "manage.py", "events_writer", "--consumer", "doomed"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        # kill right after the first flush of ten: a fixed pause let a quick machine finish
        deadline = time.monotonic() + 60
        while buffer_status().waiting_events == 20_000 and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    left = buffer_status().waiting_events
    assert 0 < left < 20_000, "the kill should land mid-way through the backlog"
    EventWriter(consumer="rescuer", claim_idle_ms=0).flush()
    assert raw_and_distinct(analytics_store) == (20_000, 20_000)
    assert events_latest(filters=EventFilter(), limit=0).count == 20_000


def test_beat_safety_net_flushes_everything_only_when_no_writer_runs(event_buffer, analytics_store):
    from analytics.events.buffer import buffer_keys
    from analytics.events.tasks import events_flush_stale
    from core.redis import redis_client

    capture(30)
    redis_client().set(buffer_keys().writer_alive, "someone", ex=10)
    assert events_flush_stale() == 0  # a live writer owns new entries
    redis_client().delete(buffer_keys().writer_alive)
    assert events_flush_stale() == 30
    assert raw_and_distinct(analytics_store) == (30, 30)


def test_a_missing_events_table_keeps_events_waiting_instead_of_dead_lettering(event_buffer):
    from analytics.store.migrate import store_migrate

    path = settings.VAR_DIR / "chdb-unmigrated"
    shutil.rmtree(path, ignore_errors=True)
    scratch = store_for_url(f"chdb://{path}")
    capture(5)
    with pytest.raises(StoreUnavailable):
        EventWriter(consumer="w", target=scratch).flush()
    status = buffer_status()
    assert (status.waiting_events, status.dead_entries) == (5, 0)
    store_migrate(target=scratch)
    assert EventWriter(consumer="w", target=scratch).flush() == 5


@pytest.mark.slow
@pytest.mark.skipif(not settings.CLICKHOUSE_URL.startswith("chdb://"), reason="embedded store")
def test_writer_process_writes_within_seconds_and_stops_cleanly_on_sigterm(
    event_buffer, analytics_store
):
    child = subprocess.Popen(
        [sys.executable, "-u", "manage.py", "events_writer"],
        cwd=settings.BASE_DIR,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert "started" in child.stdout.readline()
        capture(10)
        deadline = time.monotonic() + 30
        while buffer_status().waiting_events and time.monotonic() < deadline:
            time.sleep(0.1)
        assert raw_and_distinct(analytics_store) == (10, 10)
        assert buffer_status().writer_alive
    finally:
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=30) == 0
    assert "stopped" in child.stdout.read()


def test_an_entry_refused_alone_is_retried_before_it_is_dead_lettered(event_buffer):
    from analytics.events.buffer import Chunk, buffer_append
    from analytics.events.writer import DEAD_LETTER_AFTER
    from analytics.store import StoreError

    bad = b'{"uuid":"00000000-0000-0000-0000-000000000002","timestamp":"nope"}'
    buffer_append([Chunk(bad, 1, b"[]")])
    writer = EventWriter(consumer="patient")
    for _ in range(DEAD_LETTER_AFTER - 1):
        with pytest.raises(StoreError):
            writer.flush()
        assert buffer_status().dead_entries == 0
    assert writer.flush() == 0
    status = buffer_status()
    assert (status.entries, status.dead_entries) == (0, 1)
