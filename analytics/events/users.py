"""The users dimension (store table `users`) kept current from signup and subscription events
and from person properties (`$set` / `$set_once`, as PostHog SDKs send them).

Capture derives one update per such event; the writer applies them after the events are in
the store, merging with the stored row so that an older event never overrides a newer one.
The tiers also go to a Redis hash that capture reads to set `user_tier` on every event.

Person properties: `tier`, `country`, `signup_source` and the signup date (`signup_at` or
`signup_date`, ISO 8601) of an event's `$set` overwrite the row's (unless a newer update
already changed the row: then they only fill what is empty), those of `$set_once` only fill what
is empty (a row made by this very update counts as empty). Other person properties stay in the
event's properties.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from analytics.catalog import Event
from analytics.events.buffer import buffer_keys, remember_tiers, user_tiers_forget
from analytics.store import AnalyticsStore
from core.redis import redis_client

TIER_SETTING_EVENTS = {
    Event.SUBSCRIPTION_STARTED.value,
    Event.SUBSCRIPTION_UPGRADED.value,
    Event.SUBSCRIPTION_DOWNGRADED.value,
    Event.SUBSCRIPTION_CANCELLED.value,
}
DIMENSION_EVENTS = TIER_SETTING_EVENTS | {Event.SIGNUP.value}
TIERS_REFRESH_SECONDS = 600
SET, SET_ONCE = "$set", "$set_once"
# person property -> users column; the signup date has two spellings
PERSON_COLUMNS = {
    "tier": "tier",
    "country": "country",
    "signup_source": "signup_source",
    "signup_at": "signup_at",
    "signup_date": "signup_at",
}
MAX_PERSON_VALUE = 50

_CURRENT_SQL = """
SELECT user_id,
       argMax(signup_at, updated_at) AS signup_at,
       argMax(tier, updated_at) AS tier,
       argMax(country, updated_at) AS country,
       argMax(signup_source, updated_at) AS signup_source,
       max(updated_at) AS last_update
FROM users
WHERE user_id IN {ids:Array(String)}
GROUP BY user_id
"""


def _signup_at(value) -> str | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC).isoformat(sep=" ", timespec="milliseconds")[:23]


def person_columns(values) -> dict[str, str]:
    """The users columns a `$set` / `$set_once` object sets (unknown or invalid values ignored)."""
    if not isinstance(values, dict):
        return {}
    out = {}
    for key, column in PERSON_COLUMNS.items():
        value = values.get(key)
        if column == "signup_at":
            value = _signup_at(value)
        elif not isinstance(value, str) or len(value) > MAX_PERSON_VALUE:
            value = None
        if value:
            out[column] = value
    return out


def updates_dimension(event: str, properties: dict) -> bool:
    """Whether this event changes the users dimension (capture then derives an update)."""
    return event in DIMENSION_EVENTS or bool(
        person_columns(properties.get(SET)) or person_columns(properties.get(SET_ONCE))
    )


def tier_after(event: str, properties: dict) -> str | None:
    """The subscription tier a user holds after this event, when the event says so."""
    person_tier = person_columns(properties.get(SET)).get("tier")
    if person_tier:
        return person_tier
    if event == Event.SIGNUP:
        tier = properties.get("user_tier", "free")
    elif event == Event.SUBSCRIPTION_CANCELLED:
        tier = "free"
    elif event in TIER_SETTING_EVENTS:
        tier = properties.get("tier")
    else:
        return None
    return tier if isinstance(tier, str) and 0 < len(tier) <= 50 else None


def dimension_update(*, event: str, user_id: str, at: str, properties: dict) -> dict:
    """The update a signup or subscription event makes (`at`: 'YYYY-MM-DD HH:MM:SS.fff' UTC)."""
    update = {"user_id": user_id, "event": event, "at": at, "tier": tier_after(event, properties)}
    if event == Event.SIGNUP:
        source = properties.get("signup_source")
        country = properties.get("geo_country")
        update["signup_source"] = source if isinstance(source, str) else ""
        update["country"] = country if isinstance(country, str) else ""
    for key in (SET, SET_ONCE):
        columns = person_columns(properties.get(key))
        if columns:
            update[key] = columns
    return update


def _merge(row: dict | None, update: dict) -> dict:
    at = update["at"]
    fresh = row is None
    if row is None:
        row = {
            "user_id": update["user_id"],
            "signup_at": at,
            "tier": "free",
            "country": "",
            "signup_source": "",
            "updated_at": "",
        }
    row = dict(row)
    newer = at >= row["updated_at"]
    if update["event"] == Event.SIGNUP:
        row["signup_at"] = min(row["signup_at"], at)
        for key in ("country", "signup_source"):
            if update.get(key) and (newer or not row[key]):
                row[key] = update[key]
    if update["tier"] and newer:
        row["tier"] = update["tier"]
    for key in (SET_ONCE, SET):  # $set last: it wins over $set_once in one event, as PostHog's
        for column, value in update.get(key, {}).items():
            if fresh or not row[column] or (key == SET and newer):
                row[column] = value
    row["updated_at"] = max(row["updated_at"], at)
    return row


def _plus_one_ms(stamp: str) -> str:
    value = dt.datetime.fromisoformat(stamp) + dt.timedelta(milliseconds=1)
    return value.isoformat(sep=" ", timespec="milliseconds")


def _current(db: AnalyticsStore, ids: Iterable[str]) -> dict[str, dict]:
    current = {}
    for row in db.query(_CURRENT_SQL, {"ids": sorted(set(ids))}, consistent=True):
        row["updated_at"] = row.pop("last_update")
        current[row["user_id"]] = row
    return current


def users_dimension_apply(*, db: AnalyticsStore, updates: Iterable[dict]) -> int:
    """Merge updates into `users` (one read, one insert) and the tier cache; idempotent."""
    updates = sorted(updates, key=lambda u: u["at"])
    if not updates:
        return 0
    current = _current(db, (u["user_id"] for u in updates))
    merged = dict(current)
    for update in updates:
        merged[update["user_id"]] = _merge(merged.get(update["user_id"]), update)
    return _store_changed(db, current, merged)


def _merge_rows(person: dict | None, linked: dict, person_id: str) -> dict:
    """A linked id's row folded into its person's: the earliest signup, the newer row's tier,
    each text column from the newer row that has it."""
    if person is None:
        return {**linked, "user_id": person_id}
    newer, older = (
        (linked, person) if linked["updated_at"] > person["updated_at"] else (person, linked)
    )
    row = {**person, "signup_at": min(person["signup_at"], linked["signup_at"])}
    row["tier"] = newer["tier"]
    for column in ("country", "signup_source"):
        row[column] = newer[column] or older[column]
    row["updated_at"] = max(person["updated_at"], linked["updated_at"])
    return row


def users_dimension_merge(*, db: AnalyticsStore, moves: dict[str, str], delete: str) -> int:
    """Fold the users rows of linked ids (`moves`: id -> person) into their persons' rows and
    delete theirs (`delete`: the DELETE FROM clause of `users`); idempotent."""
    current = _current(db, [*moves, *moves.values()])
    linked = sorted(
        (uid for uid in moves if uid in current), key=lambda u: current[u]["updated_at"]
    )
    if not linked:
        return 0
    merged = dict(current)
    for uid in linked:
        person = moves[uid]
        merged[person] = _merge_rows(merged.get(person), current[uid], person)
        del merged[uid]
    changed = _store_changed(db, current, merged)
    db.command(f"{delete} WHERE user_id IN {{ids:Array(String)}}", {"ids": linked})
    return changed


def _store_changed(db: AnalyticsStore, current: dict[str, dict], merged: dict[str, dict]) -> int:
    changed = [row for uid, row in merged.items() if row != current.get(uid)]
    for row in changed:
        before = current.get(row["user_id"])
        if before is not None and row["updated_at"] <= before["updated_at"]:
            # A late event changed the row without moving its version: step the version by
            # 1 ms so ReplacingMergeTree and argMax keep the merged row, not the old one.
            row["updated_at"] = _plus_one_ms(before["updated_at"])
    db.insert("users", changed)
    if changed:
        tiers = {row["user_id"]: row["tier"] for row in changed}
        redis_client().hset(buffer_keys().tiers, mapping=tiers)
        remember_tiers(tiers)
    return len(changed)


def user_tiers_refresh(*, db: AnalyticsStore, force: bool = False) -> int:
    """Load every user's current tier into the Redis cache (users written straight into the
    store, e.g. by generate_events, become known to enrichment). Runs at most every 10 min."""
    keys = buffer_keys()
    client = redis_client()
    if not force and not client.set(keys.tiers_fresh, 1, nx=True, ex=TIERS_REFRESH_SECONDS):
        return 0
    rows = db.query("SELECT user_id, argMax(tier, updated_at) AS tier FROM users GROUP BY user_id")
    for start in range(0, len(rows), 10000):
        chunk = rows[start : start + 10000]
        client.hset(keys.tiers, mapping={row["user_id"]: row["tier"] for row in chunk})
    user_tiers_forget()
    if force:
        client.set(keys.tiers_fresh, 1, ex=TIERS_REFRESH_SECONDS)
    return len(rows)
