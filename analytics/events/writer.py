"""The writer: moves buffered events from the Redis stream into the store, exactly once.

Delivery is at least once (an entry stays pending in the consumer group until its rows are
inserted, then it is acknowledged and deleted); counting is exactly once because
- a re-delivered entry (own retry, or claimed from a writer that died) first drops the rows
  whose uuid the store already holds, and
- the events table is a ReplacingMergeTree on the uuid and every query counts a uuid once.
After each insert, identity links (`$identify`, `$create_alias`) are recorded; the linked ids'
events move to their persons in periodic passes (analytics.events.identity).
If the store is down the entries stay in Redis and the writer retries with backoff.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field

import msgspec
import redis
from django.conf import settings

from analytics.events.buffer import GROUP, LAG_SAMPLES, buffer_keys
from analytics.events.identity import (
    identity_apply,
    identity_mark,
    identity_moves_run,
    is_link,
    row_user_ids,
)
from analytics.events.users import user_tiers_refresh, users_dimension_apply
from analytics.store import AnalyticsStore, StoreError, StoreUnavailable, store
from core.redis import redis_client

log = logging.getLogger(__name__)

READ_COUNT = 200  # stream entries per read; one entry holds up to 1,000 events
CLAIM_IDLE_MS = 60_000  # a pending entry untouched this long belongs to a dead writer
MAX_BACKOFF_SECONDS = 10.0
HEARTBEAT_SECONDS = 10
UUID_CHECK_CHUNK = 20_000
DEAD_LETTER_AFTER = 5  # deliveries of an entry refused alone before it is set aside
_decode_updates = msgspec.json.Decoder(list[dict]).decode


@dataclass
class Entry:
    id: bytes
    rows: bytes
    count: int
    at_ms: int
    users: bytes

    @classmethod
    def from_stream(cls, entry_id: bytes, fields: dict) -> Entry:
        return cls(
            entry_id,
            fields[b"rows"],
            int(fields[b"n"]),
            int(fields[b"at"]),
            fields.get(b"users", b"[]"),
        )


@dataclass
class Batch:
    entries: list[Entry] = field(default_factory=list)
    redelivered: bool = False

    @property
    def count(self) -> int:
        return sum(e.count for e in self.entries)

    def __bool__(self) -> bool:
        return bool(self.entries)


def _uuid_of(line: bytes) -> str:
    # Capture serializes rows with `uuid` first: {"uuid":"<36 characters>",...
    return line[9:45].decode()


class EventWriter:
    """One consumer of the group. `flush()` drains synchronously; `run()` loops until stopped."""

    def __init__(
        self,
        *,
        consumer: str | None = None,
        target: AnalyticsStore | None = None,
        claim_idle_ms: int = CLAIM_IDLE_MS,
    ):
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.db = target or store()
        self.claim_idle_ms = claim_idle_ms
        self.keys = buffer_keys()
        self.redis = redis_client()
        self._group_ready = False

    # -- reading -------------------------------------------------------------------------

    def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            # From the stream's start, so entries appended before any writer ran are read too.
            self.redis.xgroup_create(self.keys.stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def _xreadgroup(self, start: str, *, count: int, block_ms: int | None) -> list[Entry]:
        self._ensure_group()
        try:
            reply = self.redis.xreadgroup(
                GROUP, self.consumer, {self.keys.stream: start}, count=count, block=block_ms
            )
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._group_ready = False  # the stream was deleted (buffer_clear): recreate
            return []
        entries = []
        for _stream, items in reply or []:
            for entry_id, fields in items:
                if fields:  # an entry deleted while pending shows up empty
                    entries.append(Entry.from_stream(entry_id, fields))
                else:
                    self.redis.xack(self.keys.stream, GROUP, entry_id)
        return entries

    def own_pending(self) -> Batch:
        """Entries this consumer read earlier but did not get into the store (a failed insert)."""
        return Batch(self._xreadgroup("0", count=READ_COUNT, block_ms=None), redelivered=True)

    def claim_stale(self) -> Batch:
        """Entries a dead writer read but never acknowledged."""
        self._ensure_group()
        try:
            reply = self.redis.xautoclaim(
                self.keys.stream, GROUP, self.consumer, self.claim_idle_ms, "0-0", count=READ_COUNT
            )
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._group_ready = False
            return Batch(redelivered=True)
        entries = [Entry.from_stream(i, f) for i, f in reply[1] if f]
        for deleted in reply[2] if len(reply) > 2 else []:
            self.redis.xack(self.keys.stream, GROUP, deleted)
        return Batch(entries, redelivered=True)

    def read_new(self, *, block_ms: int | None) -> Batch:
        """New entries, gathered until FLUSH_SIZE events or the oldest waited FLUSH_SECONDS
        (a backlog is taken at once, up to FLUSH_SIZE). `block_ms=None` never waits."""
        size = settings.EVENTS_FLUSH_SIZE
        per_read = max(1, min(READ_COUNT, size // 1000))
        batch = Batch(self._xreadgroup(">", count=per_read, block_ms=block_ms))
        if not batch:
            return batch
        deadline = batch.entries[0].at_ms / 1000 + settings.EVENTS_FLUSH_SECONDS
        while batch.count < size:
            more = self._xreadgroup(">", count=per_read, block_ms=None)  # already waiting
            if not more and block_ms is not None:
                wait_ms = int((deadline - time.time()) * 1000)
                if wait_ms > 0:
                    more = self._xreadgroup(">", count=per_read, block_ms=wait_ms)
            if not more:
                break
            batch.entries.extend(more)
        return batch

    # -- writing -------------------------------------------------------------------------

    def _absent_rows(self, payload: bytes) -> bytes:
        """The lines whose uuid is not in the store yet (for re-delivered entries)."""
        lines = payload.split(b"\n")
        present: set[str] = set()
        uuids = [_uuid_of(line) for line in lines]
        for start in range(0, len(uuids), UUID_CHECK_CHUNK):
            rows = self.db.query(
                "SELECT DISTINCT toString(uuid) AS u FROM events WHERE uuid IN {ids:Array(UUID)}",
                {"ids": uuids[start : start + UUID_CHECK_CHUNK]},
                consistent=True,
            )
            present.update(r["u"] for r in rows)
        return b"\n".join(line for line, u in zip(lines, uuids, strict=True) if u not in present)

    def write(self, batch: Batch) -> int:
        """Insert the batch's rows and users updates, then acknowledge; returns rows inserted.

        Raises StoreUnavailable / StoreError with the entries still pending."""
        if not batch:
            return 0
        payload = b"\n".join(e.rows for e in batch.entries)
        updates = [u for e in batch.entries for u in _decode_updates(e.users)]
        links = [u for u in updates if is_link(u)]
        updates = [u for u in updates if not is_link(u)]
        # Of every row, even those a re-delivery skips: an earlier try may have stopped between
        # inserting them and moving them.
        user_ids = row_user_ids(payload)
        with self.db.session():
            persons = identity_apply(db=self.db, links=links, user_ids=user_ids)
            if batch.redelivered:
                payload = self._absent_rows(payload)
            inserted = payload.count(b"\n") + 1 if payload else 0
            if payload:
                self.db.insert_json_each_row("events", payload)
            # After the insert, so that the pass that takes these ids finds the batch's rows.
            identity_mark(persons)
            for update in updates:
                update["user_id"] = persons.get(update["user_id"], update["user_id"])
            try:
                users_dimension_apply(db=self.db, updates=updates)
            except StoreUnavailable:
                raise
            except StoreError:  # the events are in; a refused users update must not block them
                log.exception("users dimension update refused by the store")
        self._acknowledge(batch.entries)
        return inserted

    def _acknowledge(self, entries: list[Entry]) -> None:
        ids = [e.id for e in entries]
        now_ms = time.time() * 1000
        pipe = self.redis.pipeline(transaction=False)
        pipe.xack(self.keys.stream, GROUP, *ids)
        pipe.xdel(self.keys.stream, *ids)
        pipe.lpush(self.keys.lag, *[round(now_ms - e.at_ms, 1) for e in entries])
        pipe.ltrim(self.keys.lag, 0, LAG_SAMPLES - 1)
        pipe.execute()

    def write_or_divide(self, batch: Batch) -> int:
        """Like write(); when the store refuses a batch (not an outage), its entries go one by
        one. An entry refused while others of its batch went in is blamed on its data and moves
        to the dead-letter stream; if every entry is refused the cause is systematic (schema,
        store) and all of them keep waiting, unless one has already been tried alone
        DEAD_LETTER_AFTER times."""
        try:
            return self.write(batch)
        except StoreUnavailable:
            raise
        except StoreError as exc:
            self._require_events_table(exc)
            if len(batch.entries) == 1:
                entry = batch.entries[0]
                if self._deliveries(entry) < DEAD_LETTER_AFTER:
                    raise
                self._dead_letter(entry, exc)
                return 0
        inserted, refused = 0, []
        for entry in batch.entries:
            try:
                inserted += self.write(Batch([entry], batch.redelivered))
            except StoreUnavailable:
                raise
            except StoreError as exc:
                refused.append((entry, exc))
        if len(refused) == len(batch.entries):
            raise refused[0][1]
        for entry, exc in refused:
            self._dead_letter(entry, exc)
        return inserted

    def _deliveries(self, entry: Entry) -> int:
        pending = self.redis.xpending_range(self.keys.stream, GROUP, entry.id, entry.id, 1)
        return pending[0]["times_delivered"] if pending else 0

    def _dead_letter(self, entry: Entry, exc: Exception) -> None:
        log.error("event entry %s refused by the store, dead-lettered: %s", entry.id, exc)
        fields = {"rows": entry.rows, "n": entry.count, "users": entry.users}
        self.redis.xadd(self.keys.dead, {**fields, "error": str(exc)[:2000]})
        self._acknowledge([entry])

    def _require_events_table(self, cause: StoreError) -> None:
        """Blame the data only if the store itself works: a missing table (migrations not run)
        or a broken store must keep the events waiting, not dead-letter them."""
        try:
            self.db.query("SELECT count() AS n FROM events WHERE 0")
        except StoreError as exc:
            raise StoreUnavailable(f"the events table is not usable: {exc}") from cause

    # -- driving -------------------------------------------------------------------------

    def flush(self, *, max_batches: int | None = None) -> int:
        """Drain the buffer now (own pending, stale, then new entries); returns rows inserted.

        Store errors propagate with the entries left pending for the next flush."""
        inserted = batches = 0
        while max_batches is None or batches < max_batches:
            batch = self.own_pending() or self.claim_stale() or self.read_new(block_ms=None)
            if not batch:
                break
            inserted += self.write_or_divide(batch)
            batches += 1
        identity_moves_run(db=self.db, force=True)
        return inserted

    def run(self, stop: threading.Event, *, block_ms: int = 1000) -> None:
        """The long-running loop of `manage.py events_writer`."""
        failures = 0
        last_beat = 0.0
        while not stop.is_set():
            now = time.monotonic()
            if now - last_beat > HEARTBEAT_SECONDS / 2:
                self.redis.set(self.keys.writer_alive, self.consumer, ex=HEARTBEAT_SECONDS)
                last_beat = now
            try:
                if failures == 0:
                    user_tiers_refresh(db=self.db)
                batch = self.own_pending() or self.claim_stale() or self.read_new(block_ms=block_ms)
                if batch:
                    self.write_or_divide(batch)
                identity_moves_run(db=self.db)
                failures = 0
            except (StoreError, redis.RedisError, OSError) as exc:
                failures += 1
                delay = min(MAX_BACKOFF_SECONDS, 0.25 * 2**failures)
                log.warning("event writer: %s; retrying in %.1f s", exc, delay)
                if failures > 1:
                    self._keep_claimed()
                stop.wait(delay)

    def _keep_claimed(self) -> None:
        """While retrying, touch our pending entries so no other writer claims them as stale."""
        try:
            pending = self.redis.xpending_range(
                self.keys.stream, GROUP, "-", "+", READ_COUNT, consumername=self.consumer
            )
            ids = [p["message_id"] for p in pending]
            if ids:
                self.redis.xclaim(self.keys.stream, GROUP, self.consumer, 0, ids, justid=True)
        except redis.RedisError:
            pass
