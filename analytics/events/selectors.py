"""Reads of raw events for the events page and `GET /api/events/`; each uuid counts once.

Duplicates of a uuid can sit in the table until ReplacingMergeTree merges them (a writer
retried an insert), so counts use uniqExact(uuid) and listings keep one row per uuid.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from enum import Enum

from django.conf import settings

from analytics.store import store

COLUMNS = (
    "uuid, event, user_id, timestamp, properties, session_id, page_url, user_agent, ip, received_at"
)
# Latest events by timestamp, then one row per uuid: the inner LIMIT keeps the top-N read
# cheap; if duplicates leave too few rows the query runs again over every match.
_LATEST_SQL = """
SELECT * FROM (
    SELECT {columns} FROM events WHERE {where}
    ORDER BY timestamp DESC, uuid LIMIT {{scan:UInt32}}
) LIMIT 1 BY uuid LIMIT {{limit:UInt32}}
"""
_LATEST_ALL_SQL = """
SELECT {columns} FROM events WHERE {where}
ORDER BY timestamp DESC, uuid LIMIT 1 BY uuid LIMIT {{limit:UInt32}}
"""


@dataclass(frozen=True)
class EventFilter:
    event: str = ""
    user_id: str = ""
    date_from: dt.datetime | None = None
    date_to: dt.datetime | None = None

    def where(self) -> tuple[str, dict]:
        """A WHERE clause from fixed fragments; values only ever travel as parameters."""
        clauses, params = ["1"], {}
        if self.event:
            clauses.append("event = {event:String}")
            params["event"] = self.event
        if self.user_id:
            clauses.append("user_id = {user_id:String}")
            params["user_id"] = self.user_id
        if self.date_from:
            clauses.append("timestamp >= {date_from:DateTime64(3, 'UTC')}")
            params["date_from"] = _param_time(self.date_from)
        if self.date_to:
            clauses.append("timestamp < {date_to:DateTime64(3, 'UTC')}")
            params["date_to"] = _param_time(self.date_to)
        return " AND ".join(clauses), params


def _param_time(value: dt.datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(sep=" ", timespec="milliseconds")


def _utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def _shape(row: dict) -> dict:
    row["timestamp"] = _utc(row["timestamp"])
    row["received_at"] = _utc(row["received_at"])
    try:
        row["properties"] = json.loads(row["properties"]) if row["properties"] else {}
    except ValueError:
        row["properties"] = {"_unparsed": row["properties"]}
    return row


@dataclass(frozen=True)
class EventsPage:
    count: int  # every matching event, each uuid once
    results: list[dict]  # newest first, at most the limit


def events_latest(*, filters: EventFilter, limit: int = 100) -> EventsPage:
    where, params = filters.where()
    db = store()
    with db.session():
        count = db.query(
            f"SELECT uniqExact(uuid) AS n FROM events WHERE {where}", params, timeout=_timeout()
        )[0]["n"]
        if count == 0 or limit == 0:
            return EventsPage(count, [])
        rows = db.query(
            _LATEST_SQL.format(columns=COLUMNS, where=where),
            {**params, "scan": limit * 4, "limit": limit},
            timeout=_timeout(),
        )
        if len(rows) < min(limit, count):
            rows = db.query(
                _LATEST_ALL_SQL.format(columns=COLUMNS, where=where),
                {**params, "limit": limit},
                timeout=_timeout(),
            )
    return EventsPage(count, [_shape(r) for r in rows])


def event_get(*, uuid: str) -> dict | None:
    rows = store().query(
        f"SELECT {COLUMNS} FROM events WHERE uuid = {{uuid:UUID}} "
        "ORDER BY received_at DESC LIMIT 1",
        {"uuid": uuid},
        timeout=_timeout(),
    )
    return _shape(rows[0]) if rows else None


class Bucket(Enum):
    HOUR = ("hour", "toStartOfHour(timestamp)")
    DAY = ("day", "toStartOfDay(timestamp)")
    WEEK = ("week", "toMonday(timestamp)")

    def __init__(self, label: str, sql: str):
        self.label = label
        self.sql = sql

    @classmethod
    def for_span(cls, span: dt.timedelta) -> Bucket:
        if span <= dt.timedelta(days=3):
            return cls.HOUR
        if span <= dt.timedelta(days=120):
            return cls.DAY
        return cls.WEEK


@dataclass(frozen=True)
class EventCounts:
    bucket: Bucket
    rows: list[dict]  # {"bucket": datetime, "event": str, "n": int}, by bucket


def event_counts(*, filters: EventFilter) -> EventCounts:
    """Events per name per hour, day or week (picked from the span), each uuid once."""
    where, params = filters.where()
    db = store()
    with db.session():
        span_row = db.query(
            f"SELECT min(timestamp) AS lo, max(timestamp) AS hi, count() AS n FROM events "
            f"WHERE {where}",
            params,
            timeout=_timeout(),
        )[0]
        if not span_row["n"]:
            return EventCounts(Bucket.DAY, [])
        bucket = Bucket.for_span(_utc(span_row["hi"]) - _utc(span_row["lo"]))
        rows = db.query(
            f"SELECT {bucket.sql} AS bucket, event, uniqExact(uuid) AS n FROM events "
            f"WHERE {where} GROUP BY bucket, event ORDER BY bucket, event",
            params,
            timeout=_timeout(),
        )
    for row in rows:
        row["bucket"] = _utc(str(row["bucket"]))
    return EventCounts(bucket, rows)


def event_names() -> list[str]:
    rows = store().query("SELECT DISTINCT event FROM events ORDER BY event", timeout=_timeout())
    return [r["event"] for r in rows]


def _timeout() -> float:
    """Every query of the explorer is bounded like the analyses' (ANALYTICS_QUERY_TIMEOUT)."""
    return settings.ANALYTICS_QUERY_TIMEOUT
