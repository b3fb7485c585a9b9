"""The users dimension (store table `users`) kept current from signup and subscription events.

Capture derives one update per such event; the writer applies them after the events are in
the store, merging with the stored row so that an older event never overrides a newer one.
The tiers also go to a Redis hash that capture reads to set `user_tier` on every event.
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


def tier_after(event: str, properties: dict) -> str | None:
    """The subscription tier a user holds after this event, when the event says so."""
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
    return update


def _merge(row: dict | None, update: dict) -> dict:
    at = update["at"]
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
    row["updated_at"] = max(row["updated_at"], at)
    return row


def _plus_one_ms(stamp: str) -> str:
    value = dt.datetime.fromisoformat(stamp) + dt.timedelta(milliseconds=1)
    return value.isoformat(sep=" ", timespec="milliseconds")


def users_dimension_apply(*, db: AnalyticsStore, updates: Iterable[dict]) -> int:
    """Merge updates into `users` (one read, one insert) and the tier cache; idempotent."""
    updates = sorted(updates, key=lambda u: u["at"])
    if not updates:
        return 0
    ids = sorted({u["user_id"] for u in updates})
    current = {}
    for row in db.query(_CURRENT_SQL, {"ids": ids}, consistent=True):
        row["updated_at"] = row.pop("last_update")
        current[row["user_id"]] = row
    merged = dict(current)
    for update in updates:
        merged[update["user_id"]] = _merge(merged.get(update["user_id"]), update)
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
