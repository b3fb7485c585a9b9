"""The durable event buffer: a Redis stream that the web appends to before answering 202.

One stream entry holds one capture call's rows, already serialized as JSONEachRow, plus the
users-dimension updates they imply. Writers read through a consumer group: an entry stays
pending until its rows are in the store, so a writer that dies between read and insert leaves
it to be claimed and re-delivered (see writer.py).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import cache

import redis
from django.conf import settings

from core.redis import redis_client

GROUP = "writers"
LAG_SAMPLES = 5000


class BufferUnavailable(Exception):
    """Redis could not take the events; nothing was accepted."""


@dataclass(frozen=True)
class BufferKeys:
    prefix: str

    @property
    def stream(self) -> str:
        return f"{self.prefix}:stream"

    @property
    def dead(self) -> str:  # entries the store refused even one by one
        return f"{self.prefix}:dead"

    @property
    def tiers(self) -> str:  # user_id -> subscription tier, for enrichment
        return f"{self.prefix}:tiers"

    @property
    def tiers_fresh(self) -> str:
        return f"{self.prefix}:tiers:fresh"

    @property
    def lag(self) -> str:  # recent visibility lags in ms (buffer append -> rows in the store)
        return f"{self.prefix}:lag"

    @property
    def writer_alive(self) -> str:
        return f"{self.prefix}:writer"

    @property
    def identity_pending(self) -> str:  # linked ids whose events wait to move to their person
        return f"{self.prefix}:identity:pending"

    @property
    def identity_moved(self) -> str:  # set while the last move pass is recent
        return f"{self.prefix}:identity:moved"

    def all(self) -> list[str]:
        return [
            self.stream,
            self.dead,
            self.tiers,
            self.tiers_fresh,
            self.lag,
            self.writer_alive,
            self.identity_pending,
            self.identity_moved,
        ]


def buffer_keys() -> BufferKeys:
    return BufferKeys(settings.EVENTS_REDIS_PREFIX)


@dataclass(frozen=True)
class Chunk:
    rows: bytes  # JSONEachRow lines for the events table
    count: int
    users: bytes  # JSON array of users-dimension updates ("[]" when none)


def buffer_append(chunks: list[Chunk]) -> None:
    """Append chunks in one pipelined round trip; raises BufferUnavailable if Redis is down."""
    if not chunks:
        return
    now_ms = int(time.time() * 1000)
    stream = buffer_keys().stream
    try:
        pipe = redis_client().pipeline(transaction=False)
        for chunk in chunks:
            pipe.xadd(
                stream, {"rows": chunk.rows, "n": chunk.count, "at": now_ms, "users": chunk.users}
            )
        pipe.execute()
    except (redis.RedisError, OSError) as exc:
        raise BufferUnavailable(f"the event buffer (Redis) is unavailable: {exc}") from exc


TIER_CACHE_SECONDS = 30.0
TIER_CACHE_SIZE = 500_000
_tier_cache: dict[str, tuple[float, str | None]] = {}


def user_tiers(user_ids: list[str]) -> dict[str, str]:
    """Known subscription tiers of these users; unknown users are left out.

    A process-local cache (30 s) in front of the Redis hash keeps the hot path to one round
    trip for the users not seen lately; a tier change reaches every web process within 30 s."""
    now = time.monotonic()
    known: dict[str, str] = {}
    missing = []
    for uid in user_ids:
        hit = _tier_cache.get(uid)
        if hit is not None and hit[0] > now:
            if hit[1] is not None:
                known[uid] = hit[1]
        else:
            missing.append(uid)
    if missing:
        try:
            values = redis_client().hmget(buffer_keys().tiers, missing)
        except (redis.RedisError, OSError) as exc:
            raise BufferUnavailable(f"the event buffer (Redis) is unavailable: {exc}") from exc
        if len(_tier_cache) > TIER_CACHE_SIZE:
            _tier_cache.clear()
        expires = now + TIER_CACHE_SECONDS
        for uid, value in zip(missing, values, strict=True):
            tier = value.decode() if value else None
            _tier_cache[uid] = (expires, tier)
            if tier is not None:
                known[uid] = tier
    return known


def remember_tiers(tiers: dict[str, str]) -> None:
    """Tiers this process just wrote (the writer, or a flush in the same process)."""
    expires = time.monotonic() + TIER_CACHE_SECONDS
    _tier_cache.update({uid: (expires, tier) for uid, tier in tiers.items()})


def user_tiers_forget() -> None:
    """Drop this process's tier cache (after the users dimension changed under a test)."""
    _tier_cache.clear()


# One user's rows appended with that user's tier read in the same round trip (the hot path of
# single-user captures such as experiment exposures). Each row comes as head, separator, tail:
# the tier goes between head and tail as `"user_tier":"<tier>"`, escaped, because a row's
# properties are a JSON string inside the row's JSON. A separator "!" marks a row taken as it
# is (the client sent its own user_tier). A tier that would itself need escaping is not
# spliced: the script appends nothing and answers {0, tier}, and the caller builds the rows
# with the tier instead. Answers {1, tier or nil} after the append.
_APPEND_WITH_TIER = r"""
local tier = redis.call('HGET', KEYS[1], ARGV[1])
if tier and string.find(tier, '[%c"\\]') then return {0, tier} end
local rows = {}
for i = 4, #ARGV, 3 do
  if ARGV[i + 1] == '!' then
    rows[#rows + 1] = ARGV[i]
  elseif tier then
    rows[#rows + 1] = ARGV[i] .. ARGV[i + 1] .. '\\"user_tier\\":\\"' .. tier .. '\\"' .. ARGV[i + 2]
  else
    rows[#rows + 1] = ARGV[i] .. ARGV[i + 2]
  end
end
redis.call('XADD', KEYS[2], '*', 'rows', table.concat(rows, '\n'), 'n', #rows,
           'at', ARGV[2], 'users', ARGV[3])
return {1, tier}
"""


@dataclass(frozen=True)
class SplitRow:
    """A row whose tier is unknown yet: `head + separator + tier + tail`, or `head` alone
    when `separator` is "!"."""

    head: bytes
    separator: bytes
    tail: bytes


def buffer_append_with_tier(user_id: str, rows: list[SplitRow], users: bytes) -> str | None:
    """Append one user's rows with their tier spliced in, in one round trip; returns the tier
    (None when unknown). Raises TierNeedsEscaping when the stored tier cannot be spliced, and
    BufferUnavailable if Redis is down."""
    keys = buffer_keys()
    args: list[bytes | str | int] = [user_id, int(time.time() * 1000), users]
    for row in rows:
        args += [row.head, row.separator, row.tail]
    try:
        done, tier = _append_script()(keys=[keys.tiers, keys.stream], args=args)
    except (redis.RedisError, OSError) as exc:
        raise BufferUnavailable(f"the event buffer (Redis) is unavailable: {exc}") from exc
    tier = tier.decode() if tier else None
    _tier_cache[user_id] = (time.monotonic() + TIER_CACHE_SECONDS, tier)
    if not done:
        raise TierNeedsEscaping(tier)
    return tier


class TierNeedsEscaping(Exception):
    """The user's stored tier holds a quote, backslash or control character."""


@cache
def _append_script():
    return redis_client().register_script(_APPEND_WITH_TIER)


def tier_cached(user_id: str) -> tuple[bool, str | None]:
    """(whether this process knows the user's tier lately, the tier or None)."""
    hit = _tier_cache.get(user_id)
    if hit is not None and hit[0] > time.monotonic():
        return True, hit[1]
    return False, None


@dataclass(frozen=True)
class BufferStatus:
    waiting_events: int  # appended, not yet in the store (in the stream: new or pending)
    entries: int
    pending_entries: int  # read by a writer, not yet acknowledged
    dead_entries: int
    lag_p95_ms: float | None
    lag_samples: int
    writer_alive: bool


def buffer_status() -> BufferStatus:
    keys = buffer_keys()
    client = redis_client()
    pipe = client.pipeline(transaction=False)
    pipe.xlen(keys.stream)
    pipe.xlen(keys.dead)
    pipe.lrange(keys.lag, 0, LAG_SAMPLES - 1)
    pipe.exists(keys.writer_alive)
    entries, dead, lags, alive = pipe.execute()
    waiting = 0
    if entries:
        # Entries are deleted once written, so everything still in the stream is waiting.
        for _id, fields in client.xrange(keys.stream, count=10000):
            waiting += int(fields[b"n"])
    try:
        pending = client.xpending(keys.stream, GROUP)["pending"] if entries else 0
    except redis.ResponseError:  # no group yet
        pending = 0
    samples = sorted(float(x) for x in lags)
    p95 = samples[math.ceil(0.95 * len(samples)) - 1] if samples else None  # nearest rank
    return BufferStatus(waiting, entries, pending, dead, p95, len(samples), bool(alive))


def buffer_clear() -> None:
    """Drop every buffered event and the caches (tests and benchmarks only)."""
    redis_client().delete(*buffer_keys().all())
    user_tiers_forget()
