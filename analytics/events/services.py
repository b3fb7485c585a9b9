"""Writes of event capture. Capture and flushing are the entry points other apps use:

from analytics.events.services import events_capture, events_flush

result = events_capture(events=[{"event": "experiment_assignment", "user_id": "u1",
                                 "properties": {"experiment_id": "x", "variant": "b"}}])
events_flush()  # tests: make the captured events visible in the store now
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import msgspec
from django.conf import settings

from analytics.events.buffer import (
    BufferUnavailable,
    Chunk,
    SplitRow,
    TierNeedsEscaping,
    buffer_append,
    buffer_append_with_tier,
    tier_cached,
    user_tiers,
)
from analytics.events.enrich import enriched, mask_ip
from analytics.events.identity import identity_link
from analytics.events.schema import MAX_BATCH, Rejected, uuid7_texts, validate_events
from analytics.events.users import dimension_update, tier_after, updates_dimension

__all__ = ["BufferUnavailable", "CaptureResult", "events_capture", "events_flush"]


class _Row(msgspec.Struct, array_like=False):
    uuid: str  # first: the writer reads it back from a fixed offset of each line
    event: str
    user_id: str
    timestamp: str
    properties: msgspec.Raw
    session_id: str
    page_url: str
    user_agent: str
    ip: str
    received_at: str


_encode = msgspec.json.Encoder().encode
_encode_updates = msgspec.json.Encoder().encode


def _utc_text(value: dt.datetime) -> str:
    """'YYYY-MM-DD HH:MM:SS.fff' in UTC, as the store parses it."""
    if value.tzinfo is not dt.UTC:
        value = value.astimezone(dt.UTC)
    return value.isoformat(sep=" ", timespec="milliseconds")[:23]


@dataclass
class CaptureResult:
    """`accepted` events are in the durable buffer; `rejected` name the index and field."""

    accepted: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    uuids: list[str] = field(default_factory=list)  # of the accepted events, in input order

    def as_dict(self) -> dict:
        return {"accepted": self.accepted, "rejected": [r.as_dict() for r in self.rejected]}


def events_capture(
    *,
    events: list[dict],
    api_key=None,
    ip: str | None = None,
    user_agent: str | None = None,
    served_by: str = "",
) -> CaptureResult:
    """Validate, enrich and append events to the durable buffer (Redis) in one round trip.

    Each event: `event`, `user_id` (required); `uuid` (generated as UUIDv7 when absent),
    `timestamp` (ISO 8601 with offset, or an aware datetime; default now), `properties`,
    `session_id`, `page_url`, `user_agent`, `ip`. `ip` / `user_agent` given here apply to
    events that carry none. Invalid events are rejected one by one ("<field>: <problem>"),
    the valid ones kept. Enrichment adds device_type, is_mobile, geo_country and user_tier
    to properties when derivable, and `release` (the serving version) from `served_by` (the
    mesh's X-Served-By header) to events that name no `release` themselves. A writer moves the buffer into the store within about a
    second; `events_flush()` does it synchronously. Raises BufferUnavailable if Redis is down.
    `api_key` is the calling ApiKey, if any (kept for auditing by callers; not stored).
    """
    now = dt.datetime.now(dt.UTC)
    received_at = _utc_text(now)
    checked = validate_events(events, now=now)
    result = CaptureResult(rejected=checked.rejected)
    if not checked.events:
        return result
    user_ids = {event.user_id for _i, event, _p in checked.events}
    # One user whose tier this process does not know lately, and no tier change in the call
    # (experiment exposures, an app's single event): the append itself reads the tier and
    # splices it in, one round trip to Redis instead of two.
    only_user = next(iter(user_ids)) if len(user_ids) == 1 else None
    splice = (
        only_user is not None
        and len(checked.events) <= MAX_BATCH
        and not tier_cached(only_user)[0]
        and not any(updates_dimension(e.event, e.properties) for _i, e, _p in checked.events)
    )
    tiers = {} if splice else user_tiers(sorted(user_ids))
    split_rows: list[SplitRow] = []
    full_ip = settings.EVENTS_STORE_FULL_IP
    new_uuids = uuid7_texts(sum(1 for _i, e, _p in checked.events if e.uuid is None))
    new_uuids.reverse()  # popped from the end: in creation order
    rows: list[bytes] = []
    updates: list[dict] = []
    chunks: list[Chunk] = []
    for _index, event, props_json in checked.events:
        properties = event.properties
        changes_dimension = updates_dimension(event.event, properties)
        if changes_dimension:
            tier = tier_after(event.event, properties)
            if tier:
                tiers[event.user_id] = tier
        agent = event.user_agent or user_agent or ""
        address = event.ip or ip or ""
        more = enriched(
            properties,
            user_agent=agent,
            ip=address,
            user_tier=tiers.get(event.user_id),
            release=served_by,
        )
        if more is not None:
            properties = more
            props_json = _encode(more)
        event_uuid = str(event.uuid) if event.uuid else new_uuids.pop()
        timestamp = _utc_text(event.timestamp) if event.timestamp else received_at
        if changes_dimension:
            updates.append(
                dimension_update(
                    event=event.event, user_id=event.user_id, at=timestamp, properties=properties
                )
            )
        link = identity_link(
            event=event.event, user_id=event.user_id, at=timestamp, properties=properties
        )
        if link is not None:
            updates.append(link)
        encoded_properties = _encode(props_json.decode())  # a JSON string: "{...}"
        spliced = splice and "user_tier" not in properties
        if spliced:  # a NUL byte (never raw in JSON output) marks where the tier goes
            encoded_properties = encoded_properties[:-2] + b"\x00" + encoded_properties[-2:]
        row = _encode(
            _Row(
                uuid=event_uuid,
                event=event.event,
                user_id=event.user_id,
                timestamp=timestamp,
                properties=msgspec.Raw(encoded_properties),
                session_id=event.session_id,
                page_url=event.page_url,
                user_agent=agent,
                ip=address if full_ip else mask_ip(address),
                received_at=received_at,
            )
        )
        if spliced:
            head, tail = row.split(b"\x00")
            split_rows.append(SplitRow(head, b"," if properties else b"", tail))
        elif splice:
            split_rows.append(SplitRow(row, b"!", b""))
        else:
            rows.append(row)
        result.uuids.append(event_uuid)
        if len(rows) == MAX_BATCH:
            chunks.append(Chunk(b"\n".join(rows), len(rows), _encode_updates(updates)))
            rows, updates = [], []
    if splice:
        try:
            buffer_append_with_tier(only_user, split_rows, _encode_updates(updates))
        except TierNeedsEscaping:  # rare: now cached, the tier is added like any other
            return events_capture(
                events=events, api_key=api_key, ip=ip, user_agent=user_agent, served_by=served_by
            )
        result.accepted = len(result.uuids)
        return result
    if rows:
        chunks.append(Chunk(b"\n".join(rows), len(rows), _encode_updates(updates)))
    buffer_append(chunks)
    result.accepted = len(result.uuids)
    return result


def events_flush(max_batches: int | None = None) -> int:
    """Move everything buffered into the store now, synchronously; returns rows inserted.

    For tests and tools: after it returns, every event captured before the call is visible to
    store queries. Re-delivered events are never inserted twice. Store errors propagate (the
    events stay buffered for the next flush or the writer)."""
    from analytics.events.writer import EventWriter

    return EventWriter().flush(max_batches=max_batches)


def events_flush_stale(max_batches: int = 50) -> int:
    """Write what no live writer is handling: entries pending longer than the claim timeout,
    and, if no events_writer process has sent a heartbeat lately, the whole buffer."""
    from analytics.events.buffer import buffer_status
    from analytics.events.writer import EventWriter

    writer = EventWriter(consumer="celery-flush")
    if buffer_status().writer_alive:
        inserted = 0
        for _ in range(max_batches):
            batch = writer.own_pending() or writer.claim_stale()
            if not batch:
                break
            inserted += writer.write_or_divide(batch)
        return inserted
    return writer.flush(max_batches=max_batches)
