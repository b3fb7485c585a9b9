"""The shape of one captured event, checked by a compiled msgspec validator (the hot path).

`validate_events` keeps every valid event of a batch and names the field at fault for the
others; the rules are the capture API's contract (README, Analytics events).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from dataclasses import dataclass, field
from typing import Annotated, Any
from uuid import UUID

import msgspec

MAX_BATCH = 1000
MAX_PROPERTIES_BYTES = 32 * 1024
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
MAX_FUTURE = dt.timedelta(hours=1)

# The schema's pattern; capture checks it with `\Z` (Python's `$` also matches before a final
# newline, JSON Schema's does not).
EVENT_NAME_PATTERN = r"^[A-Za-z0-9_$.:-]{1,200}$"
EventName = Annotated[str, msgspec.Meta(pattern=EVENT_NAME_PATTERN.removesuffix("$") + r"\Z")]
UserId = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
ShortText = Annotated[str, msgspec.Meta(max_length=200)]
LongText = Annotated[str, msgspec.Meta(max_length=2048)]
AwareTime = Annotated[dt.datetime, msgspec.Meta(tz=True)]


class EventIn(msgspec.Struct, forbid_unknown_fields=True):
    event: EventName
    user_id: UserId
    uuid: UUID | None = None
    timestamp: AwareTime | None = None
    properties: dict[str, Any] = {}
    session_id: ShortText = ""
    page_url: LongText = ""
    user_agent: Annotated[str, msgspec.Meta(max_length=1024)] = ""
    ip: Annotated[str, msgspec.Meta(max_length=64)] = ""


@dataclass
class Rejected:
    index: int
    error: str  # "<field>: <problem>"

    def as_dict(self) -> dict:
        return {"index": self.index, "error": self.error}


@dataclass
class Validated:
    events: list[tuple[int, EventIn, bytes]] = field(default_factory=list)  # index, event, props
    rejected: list[Rejected] = field(default_factory=list)


_AT_FIELD = re.compile(r"^(?P<problem>.*?) - at `\$\.(?P<field>[A-Za-z_]+)[^`]*`$")
_UNKNOWN = re.compile(r"unknown field `(?P<field>[^`]+)`")
_MISSING = re.compile(r"missing required field `(?P<field>[^`]+)`")


def describe_error(exc: msgspec.ValidationError) -> str:
    """msgspec's message as `<field>: <problem>`."""
    message = str(exc)
    if m := _AT_FIELD.match(message):
        return f"{m['field']}: {m['problem'][0].lower()}{m['problem'][1:]}"
    if m := _UNKNOWN.search(message):
        return f"{m['field']}: unknown field"
    if m := _MISSING.search(message):
        return f"{m['field']}: required"
    if message.startswith("Expected `object`"):
        return "event: expected a JSON object"
    return f"event: {message}"


_encode = msgspec.json.Encoder().encode


def _check(event: EventIn, now: dt.datetime) -> tuple[str | None, bytes]:
    """The rules a type cannot express; returns (error, serialized properties)."""
    for name in _TEXT_FIELDS:
        if "\x00" in getattr(event, name):
            return f"{name}: NUL characters are not allowed", b""
    if event.timestamp is not None:
        if event.timestamp < EARLIEST:
            return "timestamp: before 2000-01-01", b""
        if event.timestamp > now + MAX_FUTURE:
            return "timestamp: more than 1 hour in the future", b""
    props = _encode(event.properties)
    if len(props) > MAX_PROPERTIES_BYTES:
        return f"properties: larger than {MAX_PROPERTIES_BYTES} bytes serialized", b""
    return None, props


_TEXT_FIELDS = ("user_id", "session_id", "page_url", "user_agent", "ip")


class BatchIn(msgspec.Struct, forbid_unknown_fields=True):
    batch: list[EventIn]


_decode_batch = msgspec.json.Decoder(BatchIn).decode
_decode_event = msgspec.json.Decoder(EventIn).decode


def decode_valid_body(body: bytes) -> list[EventIn] | None:
    """The fast path of the capture API: decode and type-check the body in one pass.

    None when anything is off (bad JSON, a bad event, an empty or too large batch): the caller
    then takes the slow path that names every problem."""
    try:
        if body.lstrip()[:8].startswith(b'{"batch"'):
            events = _decode_batch(body).batch
        else:
            events = [_decode_event(body)]
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    return events if 0 < len(events) <= MAX_BATCH else None


def validate_events(raw: list[Any], *, now: dt.datetime) -> Validated:
    """Convert decoded JSON (or Python dicts, or EventIn already decoded) into events; one bad
    event never spoils the rest."""
    out = Validated()
    if all(type(item) is EventIn for item in raw):
        converted = raw
    else:
        try:
            converted = msgspec.convert(raw, list[EventIn])  # fast path: the whole batch is valid
        except msgspec.ValidationError:
            converted = None
    for index, item in enumerate(raw):
        if converted is not None:
            event = converted[index]
        else:
            try:
                event = msgspec.convert(item, EventIn)
            except msgspec.ValidationError as exc:
                out.rejected.append(Rejected(index, describe_error(exc)))
                continue
        error, props = _check(event, now)
        if error:
            out.rejected.append(Rejected(index, error))
        else:
            out.events.append((index, event, props))
    return out


_RAND_80 = (1 << 80) - 1
_CLEAR = ~((0xF << 76) | (0x3 << 62))
_SET = (0x7 << 76) | (0x2 << 62)  # version 7, RFC 4122 variant


def uuid7_texts(n: int) -> list[str]:
    """`n` time-ordered UUIDs (RFC 9562 version 7: 48-bit Unix milliseconds, then random
    bits) as canonical text, made in one go for a batch."""
    high = (time.time_ns() // 1_000_000 & ((1 << 48) - 1)) << 80
    noise = os.urandom(10 * n)
    out = []
    for i in range(n):
        value = (high | int.from_bytes(noise[10 * i : 10 * i + 10], "big") & _RAND_80) & _CLEAR
        h = f"{value | _SET:032x}"
        out.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return out


def uuid7() -> UUID:
    return UUID(uuid7_texts(1)[0])
