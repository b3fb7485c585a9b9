"""Random small event sets for the product-analysis tests (hypothesis strategies, loading).

Timestamps mix random instants with exact period boundaries (and 1 ms before them) and are
written with assorted UTC offsets; some events are sent twice with the same uuid.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pandas as pd
from django.core.cache import cache
from hypothesis import strategies as st

from analytics.store import store
from analytics.store.base import rows_to_json_each_row
from analytics.store.bulk import STORE_TABLES
from analytics.store.migrate import MIGRATIONS_DIR, split_statements

ROLLUP_MIGRATION = MIGRATIONS_DIR / "0012_panalytics_funnel_revenue_rollups.sql"

BASE = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
SPAN_DAYS = 100
USERS = [f"u{i}" for i in range(6)]
_BOUNDARIES = [
    dt.datetime(2024, m, d, tzinfo=dt.UTC) for m, d in ((1, 8), (1, 29), (2, 1), (3, 1), (3, 4))
]
_OFFSETS = [
    dt.timedelta(0),
    dt.timedelta(hours=-5),
    dt.timedelta(hours=9),
    dt.timedelta(hours=5, minutes=30),
]


@st.composite
def instants(draw) -> dt.datetime:
    kind = draw(st.sampled_from(["random", "random", "boundary", "before_boundary"]))
    if kind == "random":
        return BASE + dt.timedelta(milliseconds=draw(st.integers(0, SPAN_DAYS * 86400 * 1000)))
    edge = draw(st.sampled_from(_BOUNDARIES))
    return edge if kind == "boundary" else edge - dt.timedelta(milliseconds=1)


@st.composite
def events(draw, names, *, props=None, min_size=0, max_size=40) -> list[dict]:
    """A list of event rows: names drawn from `names`, properties from `props(draw, name)`."""
    rows = []
    for _ in range(draw(st.integers(min_size, max_size))):
        name = draw(st.sampled_from(names))
        properties = {"user_tier": draw(st.sampled_from(["free", "pro", ""]))}
        if props:
            properties.update(props(draw, name))
        row = {
            "uuid": str(uuid.UUID(int=draw(st.integers(0, 2**64)))),
            "event": name,
            "user_id": draw(st.sampled_from(USERS)),
            "timestamp": draw(instants()),
            "properties": json.dumps(properties),
            "tz": draw(st.sampled_from(_OFFSETS)),
        }
        rows.append(row)
        if draw(st.integers(0, 9)) == 0:  # a retried send: same uuid again
            rows.append(dict(row))
    # uuids drawn twice for different events would be one event to the store: keep the first
    seen, unique = {}, []
    for row in rows:
        if seen.setdefault(row["uuid"], row) is row or seen[row["uuid"]] == row:
            unique.append(row)
    return unique


def load(rows: list[dict], *, late: bool = False) -> pd.DataFrame:
    """Empty the store and the result cache, insert `rows` (timestamps in their own UTC
    offset), return them as a frame. `late`: the newer half is inserted first and the older
    half in a second insert, as events that arrive out of order."""
    cache.clear()
    db = store()
    with db.session():
        for table in STORE_TABLES:
            db.command(f"TRUNCATE TABLE {table}")
        batches = [rows]
        if late:
            ordered = sorted(rows, key=lambda r: r["timestamp"])
            batches = [ordered[len(ordered) // 2 :], ordered[: len(ordered) // 2]]
        for batch in batches:
            if batch:
                db.insert_json_each_row("events", rows_to_json_each_row(_wire(batch)))
    frame = pd.DataFrame(rows, columns=["uuid", "event", "user_id", "timestamp", "properties"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame


def rerun_rollup_backfill(*, truncate: bool) -> None:
    """Run migration 0012 again over the stored events (after emptying its rollups if
    `truncate`), as on a store that held events before the views existed."""
    cache.clear()
    db = store()
    with db.session():
        if truncate:
            db.command("TRUNCATE TABLE panalytics_user_event_times")
            db.command("TRUNCATE TABLE panalytics_subscriptions")
        for statement in split_statements(ROLLUP_MIGRATION.read_text()):
            db.command(statement.rstrip(";"))


def _wire(rows: list[dict]) -> list[dict]:
    return [
        {
            "uuid": r["uuid"],
            "event": r["event"],
            "user_id": r["user_id"],
            "timestamp": r["timestamp"]
            .astimezone(dt.timezone(r["tz"]))
            .isoformat(timespec="milliseconds"),
            "properties": r["properties"],
        }
        for r in rows
    ]


def rows_from_spec(spec, *, start: dt.datetime) -> list[dict]:
    """Event rows from (user, event, days after `start`, properties) tuples, uuids numbered."""
    return [
        {
            "uuid": f"00000000-0000-0000-0000-{i:012d}",
            "event": e,
            "user_id": u,
            "timestamp": start + dt.timedelta(days=d),
            "properties": json.dumps(p),
            "tz": dt.timedelta(0),
        }
        for i, (u, e, d, p) in enumerate(spec)
    ]
