"""Identity, as PostHog's person mapping: `$identify` and `$create_alias` link a distinct id (an
SDK's anonymous id, an alias) to a person, and from then on that id's events are the person's,
including the events stored before the link and those that arrive after it (offline queues).

The store holds the links (`person_distinct_ids`) and, rather than every query joining them,
the writer moves the linked id's events to the person once: it copies them with the person's
id (the materialized views then add them to the person's rollups), deletes the originals and
the linked id's rows of every per-user rollup, and merges its users-dimension row into the
person's. Deletes are store mutations whose cost is per statement, not per row, so the writer
records links with each batch but moves in one pass for every id linked meanwhile, at most
every IDENTITY_MOVE_SECONDS (a synchronous flush moves at once); until its pass, a linked id's
events are still counted as that id's, never twice. Each analysis (retention, funnels, trends, lifecycle, stickiness, experiment results,
cohorts, ML features) therefore reads the person with its own SQL, unchanged.

Rules, as PostHog's:
- `$identify` (distinct_id = the user, `$anon_distinct_id` = the anonymous id) links the
  anonymous id to the user's person;
- `$create_alias` (distinct_id and `alias`) joins the two ids: the one that already belongs to a
  person stays, the other joins it; when neither does, distinct_id joins `alias` (the id
  posthog-python's `alias(previous_id, distinct_id)` sends as `alias` is the one to keep);
- an id keeps its first link, and two persons are never merged (an id others are linked to is
  never linked itself): such links are ignored, as PostHog refuses them.
A person id is never linked itself, so one lookup resolves any id.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

import msgspec
from django.conf import settings

from analytics.events.buffer import buffer_keys
from analytics.store import AnalyticsStore, StoreError
from core.redis import redis_client

log = logging.getLogger(__name__)

IDENTIFY = "$identify"
CREATE_ALIAS = "$create_alias"
IDENTITY_EVENTS = frozenset({IDENTIFY, CREATE_ALIAS})
MAX_ID = 200  # as a user_id
UUID_CHUNK = 20_000
MAX_PASS = 20_000  # linked ids per move pass
# Every per-user table the events feed, whose rows of a linked id are wrong once its events are
# the person's: the rollups (rebuilt for the person by the views when the events are copied)
# and the batch predictions (the next scoring run scores the person). The users dimension is
# merged instead (analytics.events.users); cohort member sets are replaced by their next
# computation. tests/test_identity.py holds this list to the store's tables.
PER_USER_TABLES = (
    "panalytics_user_first",
    "panalytics_user_days",
    "panalytics_user_periods",
    "panalytics_user_event_times",
    "panalytics_subscriptions",
    "user_insights",
)

_MAPPED_SQL = """
SELECT user_id, argMin(person_id, linked_at) AS person_id
FROM person_distinct_ids
WHERE user_id IN {ids:Array(String)}
GROUP BY user_id
"""
_PERSONS_SQL = """
SELECT DISTINCT person_id FROM person_distinct_ids WHERE person_id IN {ids:Array(String)}
"""


class _UserOf(msgspec.Struct):
    user_id: str = ""


_decode_user_ids = msgspec.json.Decoder(list[_UserOf]).decode
_decode_user_id = msgspec.json.Decoder(_UserOf).decode


def identity_link(*, event: str, user_id: str, at: str, properties: dict) -> dict | None:
    """The link an `$identify` or `$create_alias` event asks for (capture derives it; the writer
    applies it), or None."""
    if event == IDENTIFY:
        other, kind = properties.get("$anon_distinct_id"), "identify"
    elif event == CREATE_ALIAS:
        other, kind = properties.get("alias"), "alias"
    else:
        return None
    if isinstance(other, int | float) and not isinstance(other, bool):
        other = str(other)
    if not isinstance(other, str) or not 0 < len(other) <= MAX_ID or other == user_id:
        return None
    return {"link": other, "user_id": user_id, "kind": kind, "at": at}


def is_link(update: dict) -> bool:
    return "link" in update


def row_user_ids(payload: bytes) -> set[str]:
    """The user ids of a batch's JSONEachRow lines (one per line, never a raw newline inside)."""
    if not payload:
        return set()
    try:
        rows = _decode_user_ids(b"[" + payload.replace(b"\n", b",") + b"]")
    except (msgspec.DecodeError, msgspec.ValidationError):
        # A malformed line (the store refuses it and the writer dead-letters it): the others.
        rows = []
        for line in payload.split(b"\n"):
            try:
                rows.append(_decode_user_id(line))
            except (msgspec.DecodeError, msgspec.ValidationError):
                continue
    return {row.user_id for row in rows if row.user_id}


def persons_of(db: AnalyticsStore, ids: Iterable[str]) -> dict[str, str]:
    """{id: its person} for the ids that are linked to one."""
    ids = sorted(set(ids))
    if not ids:
        return {}
    rows = db.query(_MAPPED_SQL, {"ids": ids}, consistent=True)
    return {row["user_id"]: row["person_id"] for row in rows}


def _resolve(links: list[dict], mapped: dict[str, str], persons: set[str]) -> list[dict]:
    """The links to record, in event-time order, applying the rules of the module docstring."""
    new = []
    for link in sorted(links, key=lambda u: u["at"]):
        joining, keeping = link["link"], link["user_id"]
        if link["kind"] == "alias":
            named, alias = link["user_id"], link["link"]
            taken_named = named in mapped or named in persons
            taken_alias = alias in mapped or alias in persons
            if taken_named and taken_alias:
                continue  # both belong to persons (maybe the same one): never merged
            # The id that already belongs to a person stays; otherwise distinct_id joins alias.
            joining, keeping = (alias, named) if taken_named else (named, alias)
        person = mapped.get(keeping, keeping)
        if joining == person or joining in mapped or joining in persons:
            continue
        mapped[joining] = person
        persons.add(person)
        new.append(
            {
                "user_id": joining,
                "person_id": person,
                "linked_at": link["at"],
                "source": link["kind"],
            }
        )
    return new


def identity_apply(*, db: AnalyticsStore, links: list[dict], user_ids: set[str]) -> dict[str, str]:
    """Record the batch's new links. Returns {id: person} for every id of the batch or its links
    that belongs to a person: the caller marks them for the next move pass (identity_mark)
    once the batch's rows are in, and applies users-dimension updates to the person.

    Idempotent: a link recorded again is ignored, and a move finds nothing left to move."""
    link_ids = {u["link"] for u in links} | {u["user_id"] for u in links}
    ids = user_ids | link_ids
    if not ids:
        return {}
    mapped = persons_of(db, ids)
    if links:
        persons = {r["person_id"] for r in db.query(_PERSONS_SQL, {"ids": sorted(link_ids)})}
        new = _resolve(links, dict(mapped), persons)
        if new:
            db.insert("person_distinct_ids", new)
            # Read back: if another writer linked one of these ids meanwhile, its first link
            # wins here as everywhere.
            mapped = persons_of(db, ids)
    return mapped


def identity_mark(ids: Iterable[str]) -> None:
    """Mark linked ids for the next move pass (after their batch's rows are in the store, so a
    pass that takes them finds those rows)."""
    ids = list(ids)
    if ids:
        redis_client().sadd(buffer_keys().identity_pending, *ids)


def identity_moves_run(*, db: AnalyticsStore, force: bool = False) -> int:
    """Move the events of the ids marked by identity_mark to their persons, in one pass for
    all of them, at most every IDENTITY_MOVE_SECONDS unless `force` (a synchronous flush).
    Returns events moved. On a store error the ids stay marked for the next pass."""
    keys = buffer_keys()
    client = redis_client()
    if not client.scard(keys.identity_pending):
        return 0
    every_ms = max(1, int(settings.IDENTITY_MOVE_SECONDS * 1000))
    if not client.set(keys.identity_moved, 1, nx=not force, px=every_ms) and not force:
        return 0
    taken = [i.decode() for i in client.spop(keys.identity_pending, MAX_PASS) or []]
    try:
        moved = events_move(db=db, moves=persons_of(db, taken))
    except Exception:
        client.sadd(keys.identity_pending, *taken)
        raise
    if client.scard(keys.identity_pending) and force:
        moved += identity_moves_run(db=db, force=True)
    return moved


def _delete(table: str) -> str:
    # A sharded store deletes on each shard's local table (a Distributed table takes no DELETE).
    cluster = settings.CLICKHOUSE_CLUSTER
    return (
        f"DELETE FROM {table}_local ON CLUSTER '{cluster}'" if cluster else f"DELETE FROM {table}"
    )


_PERSON_ID = "transform(user_id, {from:Array(String)}, {to:Array(String)}, user_id)"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _stored_columns(db: AnalyticsStore) -> list[str]:
    """The events columns an insert writes (materialized ones are computed again), read from
    the store so that a column a later migration adds is copied too."""
    rows = db.query(
        "SELECT name FROM system.columns WHERE database = currentDatabase() "
        "AND table = 'events' AND default_kind IN ('', 'DEFAULT') ORDER BY position"
    )
    names = [row["name"] for row in rows]
    if "user_id" not in names or not all(_IDENTIFIER.match(n) for n in names):
        raise StoreError(f"unexpected events columns: {names}")
    return names


def events_move(*, db: AnalyticsStore, moves: dict[str, str]) -> int:
    """Give the events of each id of `moves` to its person: copy with the person's id (the views
    add the copies to the person's rollups), delete exactly the rows copied (rows of the id a
    concurrent writer inserts meanwhile stay, and its own pass moves them), then the id's rows of
    every per-user table, and merge its users row into the person's. Returns events moved."""
    from analytics.events.users import users_dimension_merge

    if not moves:
        return 0
    sources = sorted(moves)
    params = {"from": sources, "to": [moves[s] for s in sources]}
    uuids = [
        row["u"]
        for row in db.query(
            "SELECT DISTINCT toString(uuid) AS u FROM events WHERE user_id IN {from:Array(String)}",
            params,
            consistent=True,
        )
    ]
    columns = _stored_columns(db) if uuids else []
    for start in range(0, len(uuids), UUID_CHUNK):
        chunk = {**params, "uuids": uuids[start : start + UUID_CHUNK]}
        where = "WHERE user_id IN {from:Array(String)} AND uuid IN {uuids:Array(UUID)}"
        db.command(
            f"INSERT INTO events ({', '.join(columns)}) SELECT "
            + ", ".join(_PERSON_ID if c == "user_id" else c for c in columns)
            + f" FROM events {where}",
            chunk,
        )
        db.command(f"{_delete('events')} {where}", chunk)
    for table in PER_USER_TABLES:
        # A delete is a mutation of every part, whatever it matches: only where there are rows.
        found = db.query(
            f"SELECT 1 AS found FROM {table} WHERE user_id IN {{from:Array(String)}} LIMIT 1",
            params,
            consistent=True,
        )
        if found:
            db.command(f"{_delete(table)} WHERE user_id IN {{from:Array(String)}}", params)
    users_dimension_merge(db=db, moves=moves, delete=_delete("users"))
    if uuids:
        log.info("identity: moved %d events of %d linked ids", len(uuids), len(sources))
    return len(uuids)
