"""The events writer against a ClickHouse server that fails: refused, 503, slow, overloaded,
killed before or after an insert, restarted. Nothing accepted is lost or counted twice, and
the writer's loop recovers by itself.

The server is the loopback emulator of ClickHouse's HTTP interface (testing/): the transport
and the failures are emulated, every statement runs in the real engine (chdb) in its own
process, so a kill really loses that process and a restart really reopens the data on disk.
The buffer is the session's real Redis.
"""

import shutil
import threading
import time
import uuid

import pytest
from django.conf import settings

from analytics.events.buffer import buffer_clear, buffer_status
from analytics.events.services import events_capture
from analytics.events.tests.conftest import make_event
from analytics.events.writer import EventWriter
from analytics.store import StoreUnavailable
from analytics.store.migrate import store_migrate
from analytics.store.server import ServerStore
from testing.clickhouse_server import ClickHouseEmulator

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture(scope="module")
def emulator():
    path = settings.VAR_DIR / "clickhouse-faults"
    shutil.rmtree(path, ignore_errors=True)
    with ClickHouseEmulator(path) as server:
        store_migrate(target=ServerStore(server.url))
        yield server
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def server(emulator):
    """A store on the emulated server, emptied, with no fault set; the buffer emptied too."""
    if not emulator.alive:
        emulator.start()
    emulator.faults()
    db = ServerStore(emulator.url + "?send_receive_timeout=3")
    db.command("TRUNCATE TABLE IF EXISTS events")
    db.command("TRUNCATE TABLE IF EXISTS users")
    buffer_clear()
    yield db
    emulator.faults()
    buffer_clear()


def capture(n: int, start: int = 0) -> set[str]:
    events = [make_event(i, uuid=str(uuid.uuid4())) for i in range(start, start + n)]
    assert events_capture(events=events).accepted == n
    return {e["uuid"] for e in events}


def stored(db) -> tuple[int, set[str]]:
    rows = db.query("SELECT toString(uuid) AS u FROM events")
    return len(rows), {r["u"] for r in rows}


def test_503_keeps_the_events_waiting_then_they_land_once(emulator, server):
    uuids = capture(200)
    emulator.faults(fail_count=50, fail_status=503)
    writer = EventWriter(consumer="w503", target=server)
    with pytest.raises(StoreUnavailable):
        writer.flush()
    assert buffer_status().waiting_events == 200
    emulator.faults()
    assert writer.flush() == 200
    assert stored(server) == (200, uuids)
    assert buffer_status().dead_entries == 0


@pytest.mark.parametrize("code", [252, 241], ids=["TOO_MANY_PARTS", "MEMORY_LIMIT_EXCEEDED"])
def test_an_overloaded_server_is_retried_never_dead_lettered(emulator, server, code):
    uuids = capture(120)
    emulator.faults(insert_error_code=code, insert_error_count=3)
    writer = EventWriter(consumer=f"w{code}", target=server)
    for _ in range(3):
        with pytest.raises(StoreUnavailable):
            writer.write_or_divide(writer.own_pending() or writer.read_new(block_ms=None))
    assert buffer_status().dead_entries == 0
    assert writer.flush() == 120
    assert stored(server) == (120, uuids)


@pytest.mark.parametrize("when", ["before", "after"])
def test_server_killed_mid_insert_loses_and_duplicates_nothing(emulator, server, when):
    """`after`: the rows were written but the answer never came; the retry finds them there."""
    uuids = capture(300)
    emulator.faults(die_on_insert=when)
    writer = EventWriter(consumer=f"kill-{when}", target=server)
    with pytest.raises(StoreUnavailable):
        writer.flush()
    emulator.wait_exit()
    emulator.start()  # same directory, same port: a restarted server
    uuids |= capture(50, start=300)
    assert writer.flush() >= 50
    assert stored(server) == (350, uuids)
    assert buffer_status().entries == 0


def test_a_slow_server_times_out_and_the_retry_counts_once(emulator, server):
    uuids = capture(80)
    emulator.faults(delay=5, delay_count=1)  # longer than the store's 3 s receive timeout
    writer = EventWriter(consumer="slow", target=server)
    with pytest.raises(StoreUnavailable):
        writer.flush()
    time.sleep(2.5)  # the slow request may still finish on the server
    assert writer.flush() in (0, 80)
    assert stored(server) == (80, uuids)


def test_the_writer_loop_recovers_by_itself_after_a_restart(emulator, server):
    writer = EventWriter(consumer="loop", target=server)
    stop = threading.Event()
    thread = threading.Thread(target=writer.run, args=(stop,), kwargs={"block_ms": 100})
    thread.start()
    try:
        uuids = capture(100)
        _wait(lambda: stored(server)[0] == 100)
        emulator.kill()
        uuids |= capture(100, start=100)  # accepted while the server is down
        time.sleep(1.0)
        assert buffer_status().waiting_events == 100
        emulator.start()
        _wait(lambda: buffer_status().waiting_events == 0, timeout=30)
        assert stored(server) == (200, uuids)
    finally:
        stop.set()
        thread.join(timeout=30)


def _wait(condition, *, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except StoreUnavailable:
            pass
        time.sleep(0.1)
    raise AssertionError("condition not met in time")
