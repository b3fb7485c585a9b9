"""PostHog's capture wire formats, turned into our events (the capture path stays ours).

PostHog SDKs (posthog-js, posthog-react-native, posthog-python, ...) send to `/batch/`,
`/capture/`, `/e/`, `/i/v0/e/` or `/track/` one of:

- `{"api_key": ..., "batch": [event, ...], "sent_at": ...}` (server SDKs, `/batch/`);
- an event object, or a list of them, with the project token in `properties.token`
  (posthog-js), possibly gzip-compressed (`?compression=gzip-js` or `Content-Encoding: gzip`)
  or form-encoded `data=<base64 JSON>` (`compression=base64`);

where an event is `{"event", "distinct_id" | properties.distinct_id, "properties",
"timestamp" | "offset", "uuid", "$set", "$set_once"}`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import zlib
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qs
from uuid import UUID

import msgspec

from analytics.events.schema import MAX_BATCH, AwareTime, EventIn, EventName, UserId

_decode_json = msgspec.json.Decoder().decode
# Properties that say how the event travelled rather than what happened.
_TRANSPORT = ("token", "distinct_id", "$set", "$set_once")


class WireProblem(Exception):
    """The body is not a PostHog capture body: (field, problem)."""

    def __init__(self, field: str, problem: str, status: int = 400):
        super().__init__(f"{field}: {problem}")
        self.field, self.problem, self.status = field, problem, status


@dataclass
class WireBatch:
    token: str | None
    events: list  # ours, for events_capture: EventIn, or dicts (invalid ones left for it to name)


def _inflate(raw: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(raw, limit + 1)
    except zlib.error:
        raise WireProblem("body", "not valid gzip") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise WireProblem("body", f"larger than {limit} bytes", 413)
    return out


def json_bytes(raw: bytes, *, compression: str, content_type: str, limit: int) -> bytes:
    """The JSON text a PostHog SDK sent, whatever its encoding (gzip-js, base64 form, plain)."""
    if compression in ("gzip", "gzip-js") or raw[:2] == b"\x1f\x8b":
        raw = _inflate(raw, limit)
    elif compression == "lz64":
        raise WireProblem("compression", "lz64 is not supported; use gzip-js (the default)", 415)
    if content_type.startswith("application/x-www-form-urlencoded"):
        form = parse_qs(raw.decode("latin-1"))
        if "data" not in form:
            raise WireProblem("data", "form body without data")
        data = form["data"][0]
        if compression == "base64" or not data.lstrip().startswith(("{", "[")):
            try:
                raw = base64.b64decode(data + "=" * (-len(data) % 4))
            except (binascii.Error, ValueError):
                raise WireProblem("data", "not valid base64") from None
        else:
            raw = data.encode()
    return raw


def wire_events(data: bytes, *, now: dt.datetime, sent_at: str | None = None) -> WireBatch:
    """Our events from the JSON text of a PostHog body: a server SDK's well-formed batch in
    one typed pass, anything else event by event (naming each problem)."""
    fast = _typed_batch(data, now=now, sent_at=sent_at)
    if fast is not None:
        return fast
    try:
        body = _decode_json(data)
    except msgspec.DecodeError:
        raise WireProblem("body", "not valid JSON") from None
    return wire_batch(body, now=now, sent_at=sent_at)


class _TypedEvent(msgspec.Struct):
    """A PostHog event whose fields already meet EventIn's rules (other fields ignored)."""

    event: EventName
    distinct_id: UserId
    properties: dict[str, Any] = {}
    timestamp: AwareTime | None = None
    uuid: UUID | None = None
    offset: Annotated[float, msgspec.Meta(ge=0)] | None = None  # ms before sending
    set_props: dict[str, Any] | None = msgspec.field(name="$set", default=None)
    set_once: dict[str, Any] | None = msgspec.field(name="$set_once", default=None)


class _TypedBatch(msgspec.Struct):
    batch: list[_TypedEvent]
    api_key: str | None = None
    sent_at: AwareTime | None = None


_decode_typed = msgspec.json.Decoder(_TypedBatch).decode


def _typed_batch(data: bytes, *, now: dt.datetime, sent_at: str | None) -> WireBatch | None:
    """The hot path (posthog-python, posthog-node, ...: `{"api_key", "batch", "sent_at"}`):
    msgspec checks every field while decoding, then EventIn is built directly. None when
    anything is unusual; the general path then handles it."""
    if data.lstrip()[:1] != b"{":
        return None
    try:
        body = _decode_typed(data)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    if not body.batch or len(body.batch) > MAX_BATCH:
        return None
    sent = body.sent_at or (_parse_time(sent_at) if sent_at else None)
    skew = (now - sent) if sent is not None else None
    events = []
    for item in body.batch:
        props = item.properties
        session = props.get("$session_id", "")
        url = props.get("$current_url", "")
        agent = props.get("$raw_user_agent", "")
        if not (isinstance(session, str) and isinstance(url, str) and isinstance(agent, str)):
            return None
        if len(session) > 200 or len(url) > 2048 or len(agent) > 1024:
            return None
        props.pop("token", None)
        props.pop("distinct_id", None)
        if item.set_props:
            props["$set"] = item.set_props
        if item.set_once:
            props["$set_once"] = item.set_once
        at = item.timestamp
        if at is not None and skew is not None:
            at = at + skew
        elif at is None and item.offset is not None:
            at = now - dt.timedelta(milliseconds=item.offset)
        events.append(
            EventIn(
                event=item.event,
                user_id=item.distinct_id,
                uuid=item.uuid,
                timestamp=at,
                properties=props,
                session_id=session,
                page_url=url,
                user_agent=agent,
            )
        )
    return WireBatch(token=body.api_key, events=events)


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def _event(item: Any, *, now: dt.datetime, skew: dt.timedelta | None) -> Any:
    """One PostHog event as ours. Anything unusable is passed on as it is, so capture's
    validation rejects it by index and names the field."""
    if not isinstance(item, dict):
        return item
    props = item.get("properties")
    props = dict(props) if isinstance(props, dict) else {}
    distinct_id = item.get("distinct_id", props.get("distinct_id", item.get("$distinct_id")))
    out: dict[str, Any] = {"event": item.get("event")}
    out["user_id"] = str(distinct_id) if isinstance(distinct_id, int | float | str) else None
    if isinstance(item.get("uuid"), str):
        out["uuid"] = item["uuid"]
    for key in ("$set", "$set_once"):
        value = item.get(key, props.get(key))
        if isinstance(value, dict) and value:
            props[key] = value
    for key in _TRANSPORT[:2]:
        props.pop(key, None)
    at = _parse_time(item.get("timestamp"))
    offset = item.get("offset")
    if at is not None:
        # The device clock may be off: shift by how far its send time was from our receipt.
        if skew is not None:
            at = at + skew
    elif isinstance(offset, int | float) and not isinstance(offset, bool) and offset >= 0:
        at = now - dt.timedelta(milliseconds=offset)
    if at is not None:
        out["timestamp"] = at
    if isinstance(props.get("$session_id"), str):
        out["session_id"] = props["$session_id"]
    if isinstance(props.get("$current_url"), str):
        out["page_url"] = props["$current_url"]
    if isinstance(props.get("$raw_user_agent"), str):
        out["user_agent"] = props["$raw_user_agent"]
    out["properties"] = props
    return out


def wire_batch(body: Any, *, now: dt.datetime, sent_at: str | None = None) -> WireBatch:
    """Our events from a decoded PostHog body; the token is the body's `api_key`/`token` or
    the first event's `properties.token`."""
    if isinstance(body, dict) and "batch" in body:
        items = body["batch"]
        token = body.get("api_key") or body.get("token")
        sent_at = body.get("sent_at") or sent_at
    elif isinstance(body, dict):
        items = [body]
        token = body.get("api_key") or body.get("token")
        sent_at = body.get("sent_at") or sent_at
    elif isinstance(body, list):
        items, token = body, None
    else:
        raise WireProblem("body", "expected an event, a list of events or {batch: [...]}")
    if not isinstance(items, list):
        raise WireProblem("batch", "expected a list of events")
    if not items:
        raise WireProblem("batch", "empty")
    if len(items) > MAX_BATCH:
        raise WireProblem("batch", f"at most {MAX_BATCH} events")
    if not token:
        for item in items:
            props = item.get("properties") if isinstance(item, dict) else None
            token = props.get("token") if isinstance(props, dict) else None
            if token:
                break
    sent = _parse_time(sent_at) if isinstance(sent_at, str) else None
    skew = (now - sent) if sent is not None else None
    events = [_event(item, now=now, skew=skew) for item in items]
    return WireBatch(token=token if isinstance(token, str) else None, events=events)


def sent_at_from_query(value: str | None) -> str | None:
    """posthog-js puts its send time in `_` (Unix milliseconds)."""
    if not value or not value.isdigit():
        return None
    at = dt.datetime.fromtimestamp(int(value) / 1000, tz=dt.UTC)
    return at.isoformat()
