"""A realistic book2video history, simulated with numpy and written to the store in bulk.

Every user is simulated at once, per chunk of users, with vectorized draws; each event type
becomes one columnar frame, and one INSERT ... SELECT per chunk turns them all into `events`
rows (the embedded store reads Parquet files, a ClickHouse server staging tables). The rows go
to a view-less copy of `events` first; each rollup's own view SELECT then fills its table from
the copy in one pass and the copy's partitions are attached to `events`, which is half the
cost of running the views block by block (`analytics.store.bulk.StagedRows`). UUIDs, user and
session ids derive from the seed, so running the same command twice writes the same rows
(ReplacingMergeTree collapses them).

The simulated world (documented so analyses and models can be checked against it):

- **Signups** grow linearly over the window (the last month has about 3x the first month's).
  Each user has a country, a signup source, a main platform (ios/android/web), a session rate
  (sessions/day, log-normal; referral users +20 %), a satisfaction baseline (1-10), a support
  ticket rate and a viewer completion baseline.
- **Churn** is a user going quiet for good at `churn_at`. 30 % of users are "tourists" whose
  lifetime is exponential with a 4-day mean; the others have a daily hazard
  `0.004 * exp(0.55 * (7.2 - satisfaction) - 0.6 * z(session rate) + 0.5 * z(ticket rate))`,
  halved for users who will pay. **Pre-churn signal**: in the 21 days before `churn_at` the
  session rate falls to 35 %, sessions are 40 % shorter, satisfaction scores drop by 2.5
  points, support tickets are 4x as frequent and completion rates fall by 0.2. So recency,
  session counts, satisfaction and tickets in the 30 days before a date predict who is
  silent in the 30 days after it (churn ROC AUC well above 0.8).
- **Sessions** (`session_start` platform, `session_end` duration_seconds) follow a Poisson
  process at the user's rate between signup and churn; the first starts at signup. In a
  session: `feature_used` (Poisson 0.6), `project_created` (35 %), then `video_rendered`
  (85 % of projects) and `video_completed` (92 % of renders) with style, duration,
  processing time, AI service and cost, and a viewer `completion_rate`; a `satisfaction_score`
  follows 40 % of completed videos (cinematic +0.5, slideshow -0.5 on the user's baseline).
- **Subscriptions**: a user converts (`subscription_started`, tier basic/pro/enterprise at
  60/32/8 %) with probability `sigmoid(-1.3 + 0.9 * z(session rate) + 0.3 * (satisfaction - 7)
  + source effect)` after an exponential 20-day delay, if still active. 25 % of payers later
  upgrade, 10 % downgrade (exponential 60-day delay); payers cancel
  (`subscription_cancelled`, with a reason) right before they churn. A `payment` of the
  current tier's price is made every 30 days while subscribed. `mrr` is the tier price.
- Every event carries the enrichment properties the capture API would add: `user_tier` (the
  tier at that moment), `device_type`, `is_mobile`, `geo_country`.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from analytics.catalog import (
    AI_SERVICES,
    BOOK_TYPES,
    FEATURES,
    SIGNUP_SOURCES,
    TIER_MRR,
    TIERS,
    VIDEO_STYLES,
    Event,
)
from analytics.store import AnalyticsStore, store
from analytics.store.bulk import FrameLoader, StagedRows, events_insert_sql

DAY_MS = 86_400_000
MONTH_DAYS = 30.44
USERS_PER_CHUNK = 25_000

PLATFORMS = ("ios", "android", "web")
COUNTRIES = ("US", "GB", "DE", "FR", "IN", "BR", "CA", "ES", "JP", "AU")
COUNTRY_WEIGHTS = (0.34, 0.1, 0.09, 0.07, 0.12, 0.08, 0.06, 0.05, 0.05, 0.04)
SOURCE_WEIGHTS = (0.45, 0.25, 0.2, 0.1)
SOURCE_CONVERSION_EFFECT = (0.0, -0.3, 0.4, 0.2)
PLATFORM_WEIGHTS = (0.3, 0.25, 0.45)
STYLE_WEIGHTS = (0.3, 0.2, 0.15, 0.2, 0.15)
STYLE_SATISFACTION = (0.0, 0.5, 0.2, -0.5, 0.0)
STYLE_VIDEO_MINUTES = (3.0, 6.0, 9.0, 2.0, 4.0)
AI_COST_PER_MINUTE = (0.12, 0.1, 0.2, 0.05)
TICKET_CATEGORIES = ("billing", "render_failed", "quality", "account", "feature_request")
CANCEL_REASONS = ("too_expensive", "not_using", "quality", "switched_tool", "other")
TIER_PRICES = tuple(TIER_MRR[t] for t in TIERS)

TOURIST_SHARE = 0.3
BASE_HAZARD = 0.004
DECLINE_DAYS = 21.0
DECLINE_SESSION_FACTOR = 0.35
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_-]{0,20}$")


@dataclass(frozen=True)
class GenerationSpec:
    users: int
    months: int
    seed: int = 0
    end: dt.datetime | None = None  # default: now (UTC)
    id_prefix: str | None = None  # default: "u<seed>-"

    def __post_init__(self):
        if self.users < 1:
            raise ValueError("users must be at least 1")
        if not 1 <= self.months <= 120:
            raise ValueError("months must be between 1 and 120")
        if self.seed < 0:
            raise ValueError("seed must be non-negative")
        if self.id_prefix is not None and not _PREFIX_RE.match(self.id_prefix):
            raise ValueError("id_prefix: letters, digits, '_' and '-' only, at most 20")

    @property
    def prefix(self) -> str:
        return f"u{self.seed}-" if self.id_prefix is None else self.id_prefix

    @property
    def end_at(self) -> dt.datetime:
        end = self.end or dt.datetime.now(dt.UTC)
        return end.replace(tzinfo=dt.UTC) if end.tzinfo is None else end.astimezone(dt.UTC)

    @property
    def start_at(self) -> dt.datetime:
        return self.end_at - dt.timedelta(days=self.months * MONTH_DAYS)


@dataclass
class GenerationResult:
    users: int = 0
    events: int = 0
    seconds: float = 0.0
    per_event: dict[str, int] = field(default_factory=dict)
    truth: list = field(default_factory=list)  # per chunk: DataFrames of the latent truth

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


# --- simulation ---------------------------------------------------------------------------


def _z(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() or 1.0)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class _Users:
    """Latent and observed attributes of one chunk of users (times in days since start)."""

    first: int  # index of the chunk's first user
    signup: np.ndarray
    churn: np.ndarray  # may lie after the end: not churned (yet)
    country: np.ndarray
    source: np.ndarray
    platform: np.ndarray
    rate: np.ndarray
    satisfaction: np.ndarray
    ticket_rate: np.ndarray
    completion: np.ndarray
    favourite_style: np.ndarray
    conv: np.ndarray  # conversion day (inf: never)
    tier1: np.ndarray
    change: np.ndarray  # tier change day (inf: never)
    tier2: np.ndarray
    cancel: np.ndarray  # cancellation day (inf: never)

    def tier_at(self, u: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Tier code (index into TIERS) of users `u` at `day`."""
        paid = (day >= self.conv[u]) & (day < self.cancel[u])
        tier = np.where(day >= self.change[u], self.tier2[u], self.tier1[u])
        return np.where(paid, tier, 0).astype(np.uint8)

    def in_decline(self, u: np.ndarray, day: np.ndarray) -> np.ndarray:
        return day >= self.churn[u] - DECLINE_DAYS


def _simulate_users(rng: np.random.Generator, first: int, n: int, span: float) -> _Users:
    t = rng.random(n)
    signup = (-1 + np.sqrt(1 + 8 * t)) / 2 * span  # density 1 + 2t: linear growth
    country = rng.choice(len(COUNTRIES), n, p=COUNTRY_WEIGHTS).astype(np.uint8)
    source = rng.choice(len(SIGNUP_SOURCES), n, p=SOURCE_WEIGHTS).astype(np.uint8)
    platform = rng.choice(len(PLATFORMS), n, p=PLATFORM_WEIGHTS).astype(np.uint8)
    rate = rng.lognormal(np.log(0.22), 0.6, n) * np.where(source == 2, 1.2, 1.0)
    satisfaction = np.clip(rng.normal(7.2, 1.3, n), 2.0, 9.5)
    ticket_rate = rng.lognormal(np.log(0.006), 0.7, n)
    completion = rng.beta(6, 2, n)
    favourite_style = rng.choice(len(VIDEO_STYLES), n, p=STYLE_WEIGHTS).astype(np.uint8)

    z_rate = _z(np.log(rate))
    will_pay = rng.random(n) < _sigmoid(
        -1.3 + 0.9 * z_rate + 0.3 * (satisfaction - 7) + np.take(SOURCE_CONVERSION_EFFECT, source)
    )
    hazard = BASE_HAZARD * np.exp(
        0.55 * (7.2 - satisfaction) - 0.6 * z_rate + 0.5 * _z(np.log(ticket_rate))
    )
    hazard = np.where(will_pay, hazard * 0.5, hazard)
    tourist = rng.random(n) < TOURIST_SHARE
    lifetime = np.where(tourist, rng.exponential(4.0, n), rng.exponential(1.0 / hazard))
    churn = signup + lifetime

    inf = np.full(n, np.inf)
    conv = np.where(will_pay, signup + rng.exponential(20.0, n), np.inf)
    conv = np.where(conv < np.minimum(churn, span), conv, np.inf)
    tier1 = rng.choice([1, 2, 3], n, p=[0.6, 0.32, 0.08]).astype(np.uint8)
    draw = rng.random(n)
    upgrade = (draw < 0.25) & (tier1 < 3)
    downgrade = (draw >= 0.25) & (draw < 0.35) & (tier1 > 1)
    tier2 = np.where(upgrade, tier1 + 1, np.where(downgrade, tier1 - 1, tier1)).astype(np.uint8)
    change = np.where(upgrade | downgrade, conv + rng.exponential(60.0, n), np.inf)
    change = np.where(change < np.minimum(churn, span), change, np.inf)
    last_change = np.where(np.isfinite(change), change, conv)
    cancel = np.where(
        np.isfinite(conv) & (churn < span),
        np.maximum(churn - rng.uniform(0, 2, n), last_change + 0.01),
        inf,
    )
    return _Users(
        first=first,
        signup=signup,
        churn=churn,
        country=country,
        source=source,
        platform=platform,
        rate=rate,
        satisfaction=satisfaction,
        ticket_rate=ticket_rate,
        completion=completion,
        favourite_style=favourite_style,
        conv=conv,
        tier1=tier1,
        change=change,
        tier2=tier2,
        cancel=cancel,
    )


def _poisson_times(
    rng: np.random.Generator, start: np.ndarray, stop: np.ndarray, rate: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A Poisson process per user on [start, stop): (user index, day) of every point."""
    length = np.maximum(stop - start, 0.0)
    counts = rng.poisson(rate * length)
    u = np.repeat(np.arange(len(start)), counts)
    return u, start[u] + rng.random(len(u)) * length[u]


Frames = dict[str, dict[str, np.ndarray]]


def _simulate_events(rng: np.random.Generator, users: _Users, span: float) -> Frames:
    """Columns per event type: `u` (user index in chunk), `day`, `sess`, then properties."""
    n = len(users.signup)
    alive_end = np.minimum(users.churn, span)
    decline_start = np.clip(users.churn - DECLINE_DAYS, users.signup, alive_end)
    # sessions: the first at signup, then a Poisson process, slower in the decline phase
    u1, d1 = _poisson_times(rng, users.signup, decline_start, users.rate)
    u2, d2 = _poisson_times(rng, decline_start, alive_end, users.rate * DECLINE_SESSION_FACTOR)
    su = np.concatenate([np.arange(n), u1, u2])
    sday = np.concatenate([users.signup + 1e-4, d1, d2])
    keep = sday < span
    su, sday = su[keep], sday[keep]
    ns = len(su)
    sess = np.arange(1, ns + 1, dtype=np.int64)  # 0 means "no session"
    declining = users.in_decline(su, sday)
    minutes = rng.lognormal(np.log(9.0), 0.8, ns) * np.where(declining, 0.6, 1.0)
    duration = np.maximum(np.round(minutes * 60), 5).astype(np.int32)
    platform = np.where(
        rng.random(ns) < 0.8, users.platform[su], rng.integers(0, len(PLATFORMS), ns)
    ).astype(np.uint8)
    session_days = duration / 86_400.0
    frames: Frames = {
        Event.SIGNUP: {
            "u": np.arange(n),
            "day": users.signup,
            "sess": np.zeros(n, np.int64),
            "signup_source": users.source,
        },
        Event.SESSION_START: {"u": su, "day": sday, "sess": sess, "platform": platform},
        Event.SESSION_END: {
            "u": su,
            "day": sday + session_days,
            "sess": sess,
            "platform": platform,
            "duration_seconds": duration,
        },
    }

    def within(idx: np.ndarray, lo: float = 0.05, hi: float = 0.95) -> np.ndarray:
        return sday[idx] + rng.uniform(lo, hi, len(idx)) * session_days[idx]

    # features used during sessions
    fi = np.repeat(np.arange(ns), rng.poisson(0.6, ns))
    frames[Event.FEATURE_USED] = {
        "u": su[fi],
        "day": within(fi),
        "sess": sess[fi],
        "platform": platform[fi],
        "feature": rng.integers(0, len(FEATURES), len(fi)).astype(np.uint8),
    }
    # project -> render -> complete -> satisfaction
    pi = np.flatnonzero(rng.random(ns) < np.where(declining, 0.2, 0.35))
    book = rng.integers(0, len(BOOK_TYPES), len(pi)).astype(np.uint8)
    pday = within(pi, 0.02, 0.3)
    frames[Event.PROJECT_CREATED] = {
        "u": su[pi],
        "day": pday,
        "sess": sess[pi],
        "platform": platform[pi],
        "book_type": book,
    }
    r = np.flatnonzero(rng.random(len(pi)) < 0.85)
    ri, rbook = pi[r], book[r]
    ru = su[ri]
    style = np.where(
        rng.random(len(ri)) < 0.6,
        users.favourite_style[ru],
        rng.integers(0, len(VIDEO_STYLES), len(ri)),
    ).astype(np.uint8)
    service = rng.integers(0, len(AI_SERVICES), len(ri)).astype(np.uint8)
    video_seconds = np.maximum(
        np.round(np.take(STYLE_VIDEO_MINUTES, style) * 60 * rng.lognormal(0, 0.35, len(ri))), 20
    ).astype(np.int32)
    cost = np.round(np.take(AI_COST_PER_MINUTE, service) * video_seconds / 60, 2)
    processing = np.round(video_seconds * rng.uniform(0.4, 1.6, len(ri)), 1)
    rday = pday[r] + rng.uniform(0.3, 0.6, len(ri)) * session_days[ri]
    frames[Event.VIDEO_RENDERED] = {
        "u": ru,
        "day": rday,
        "sess": sess[ri],
        "platform": platform[ri],
        "video_style": style,
        "book_type": rbook,
        "ai_service": service,
        "ai_cost_dollars": cost,
    }
    c = np.flatnonzero(rng.random(len(ri)) < 0.92)
    cu, cdecl = ru[c], declining[ri[c]]
    completion = np.clip(
        rng.normal(users.completion[cu] - np.where(cdecl, 0.2, 0.0), 0.12), 0.0, 1.0
    )
    cday = rday[c] + processing[c] / 86_400.0
    frames[Event.VIDEO_COMPLETED] = {
        "u": cu,
        "day": cday,
        "sess": sess[ri[c]],
        "platform": platform[ri[c]],
        "video_style": style[c],
        "book_type": rbook[c],
        "video_duration_seconds": video_seconds[c],
        "processing_seconds": processing[c],
        "completion_rate": np.round(completion, 3),
        "ai_service": service[c],
        "ai_cost_dollars": cost[c],
    }
    s = np.flatnonzero(rng.random(len(c)) < 0.4)
    su_s, sstyle = cu[s], style[c][s]
    score = users.satisfaction[su_s] + np.take(STYLE_SATISFACTION, sstyle)
    score -= np.where(cdecl[s], 2.5, 0.0)
    frames[Event.SATISFACTION_SCORE] = {
        "u": su_s,
        "day": cday[s] + rng.uniform(0.0005, 0.002, len(s)),
        "sess": sess[ri[c]][s],
        "platform": platform[ri[c]][s],
        "score": np.clip(np.round(rng.normal(score, 1.2)), 1, 10).astype(np.uint8),
        "video_style": sstyle,
    }
    # support tickets: own Poisson process, 4x in the decline phase
    tu1, td1 = _poisson_times(rng, users.signup, decline_start, users.ticket_rate)
    tu2, td2 = _poisson_times(rng, decline_start, alive_end, users.ticket_rate * 4)
    tu, td = np.concatenate([tu1, tu2]), np.concatenate([td1, td2])
    frames[Event.SUPPORT_TICKET] = {
        "u": tu,
        "day": td,
        "sess": np.zeros(len(tu), np.int64),
        "category": rng.integers(0, len(TICKET_CATEGORIES), len(tu)).astype(np.uint8),
    }
    frames.update(_subscription_events(rng, users, span))
    return frames


def _subscription_events(rng: np.random.Generator, users: _Users, span: float) -> Frames:
    prices = np.asarray(TIER_PRICES)
    conv = np.flatnonzero(np.isfinite(users.conv))
    chg = np.flatnonzero(np.isfinite(users.change))
    up = chg[users.tier2[chg] > users.tier1[chg]]
    down = chg[users.tier2[chg] < users.tier1[chg]]
    can = np.flatnonzero(np.isfinite(users.cancel) & (users.cancel < span))
    zeros = np.zeros

    def change_frame(idx):
        return {
            "u": idx,
            "day": users.change[idx],
            "sess": zeros(len(idx), np.int64),
            "tier": users.tier2[idx],
            "mrr": prices[users.tier2[idx]],
            "previous_tier": users.tier1[idx],
            "previous_mrr": prices[users.tier1[idx]],
        }

    cancel_tier = np.where(
        users.cancel[can] >= users.change[can], users.tier2[can], users.tier1[can]
    )
    # payments every 30 days from conversion while subscribed
    stop = np.minimum(users.cancel[conv], span)
    months = np.floor((stop - users.conv[conv]) / 30.0).astype(np.int64) + 1
    pu = np.repeat(conv, months)
    k = np.arange(len(pu)) - np.repeat(np.cumsum(months) - months, months)
    pday = users.conv[pu] + k * 30.0 + 0.001
    ok = pday < np.minimum(users.cancel[pu], span)
    pu, pday = pu[ok], pday[ok]
    ptier = users.tier_at(pu, pday)
    return {
        Event.SUBSCRIPTION_STARTED: {
            "u": conv,
            "day": users.conv[conv],
            "sess": zeros(len(conv), np.int64),
            "tier": users.tier1[conv],
            "mrr": prices[users.tier1[conv]],
            "previous_tier": zeros(len(conv), np.uint8),
        },
        Event.SUBSCRIPTION_UPGRADED: change_frame(up),
        Event.SUBSCRIPTION_DOWNGRADED: change_frame(down),
        Event.SUBSCRIPTION_CANCELLED: {
            "u": can,
            "day": users.cancel[can],
            "sess": zeros(len(can), np.int64),
            "previous_tier": cancel_tier,
            "previous_mrr": prices[cancel_tier],
            "reason": rng.integers(0, len(CANCEL_REASONS), len(can)).astype(np.uint8),
        },
        Event.PAYMENT: {
            "u": pu,
            "day": pday,
            "sess": zeros(len(pu), np.int64),
            "amount": prices[ptier],
            "tier": ptier,
        },
    }


# --- loading ------------------------------------------------------------------------------


def _labels(values) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


# How each coded column becomes a property: (SQL expression over the column, ClickHouse type).
# Codes index the catalog's tuples (ClickHouse arrays are 1-based).
_PROPERTY_SQL: dict[str, tuple[str, str]] = {
    "signup_source": (f"{_labels(SIGNUP_SOURCES)}[signup_source + 1]", "String"),
    "platform": (f"{_labels(PLATFORMS)}[platform + 1]", "String"),
    "duration_seconds": ("duration_seconds", "Int32"),
    "feature": (f"{_labels(FEATURES)}[feature + 1]", "String"),
    "book_type": (f"{_labels(BOOK_TYPES)}[book_type + 1]", "String"),
    "video_style": (f"{_labels(VIDEO_STYLES)}[video_style + 1]", "String"),
    "ai_service": (f"{_labels(AI_SERVICES)}[ai_service + 1]", "String"),
    "ai_cost_dollars": ("ai_cost_dollars", "Float64"),
    "video_duration_seconds": ("video_duration_seconds", "Int32"),
    "processing_seconds": ("processing_seconds", "Float64"),
    "completion_rate": ("completion_rate", "Float64"),
    "score": ("score", "UInt8"),
    "category": (f"{_labels(TICKET_CATEGORIES)}[category + 1]", "String"),
    "tier": (f"{_labels(TIERS)}[tier + 1]", "String"),
    "mrr": ("mrr", "Float64"),
    "previous_tier": (f"{_labels(TIERS)}[previous_tier + 1]", "String"),
    "previous_mrr": ("previous_mrr", "Float64"),
    "reason": (f"{_labels(CANCEL_REASONS)}[reason + 1]", "String"),
    "amount": ("amount", "Float64"),
    "user_tier": (f"{_labels(TIERS)}[user_tier + 1]", "String"),
    "geo_country": (f"{_labels(COUNTRIES)}[country + 1]", "String"),
    "device_type": ("if(is_mobile = 1, 'mobile', 'desktop')", "String"),
    "is_mobile": ("is_mobile = 1", "Bool"),
}
_USER_AGENTS = (
    "book2video-ios/4.2 (iPhone; iOS 18.1)",
    "book2video-android/4.2 (Linux; Android 15)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 Safari/605.1.15",
)
ENRICHMENT = ("user_tier", "device_type", "is_mobile", "geo_country")
_EVENT_NUMBER = {event: i for i, event in enumerate(Event)}


def _events_rows(event: str, props: list[str], source: str) -> str:
    """SELECT of one event type's `events` rows from its columnar frame `source`."""
    exprs = ", ".join(_PROPERTY_SQL[c][0] for c in props)
    types = ", ".join(f"{c} {_PROPERTY_SQL[c][1]}" for c in props)
    agent = f"{_labels(_USER_AGENTS)}[platform + 1]" if "platform" in props else "''"
    return f"""
SELECT
    reinterpretAsUUID(concat(
        reinterpretAsString(sipHash64({{seed:UInt64}}, {_EVENT_NUMBER[event]}, n)),
        reinterpretAsString(sipHash64(n, {_EVENT_NUMBER[event]}, {{seed:UInt64}})))),
    '{event}',
    concat({{prefix:String}}, leftPad(toString(u), 6, '0')),
    fromUnixTimestamp64Milli(ts, 'UTC'),
    toJSONString(CAST(tuple({exprs}), 'Tuple({types})')),
    if(sess = 0, '', lower(hex(sipHash64({{seed:UInt64}}, 'session', sess)))),
    {agent},
    {_PROPERTY_SQL["user_tier"][0]},
    {_PROPERTY_SQL["device_type"][0]},
    is_mobile,
    {_PROPERTY_SQL["geo_country"][0]}
FROM {source}"""


_USERS_SELECT = f"""
INSERT INTO users (user_id, signup_at, tier, country, signup_source, updated_at)
SELECT
    concat({{prefix:String}}, leftPad(toString(u), 6, '0')),
    fromUnixTimestamp64Milli(ts, 'UTC'),
    {_labels(TIERS)}[user_tier + 1],
    {_labels(COUNTRIES)}[country + 1],
    {_labels(SIGNUP_SOURCES)}[signup_source + 1],
    fromUnixTimestamp64Milli(updated_ms, 'UTC')
FROM <source>"""


def generate(
    spec: GenerationSpec,
    *,
    db: AnalyticsStore | None = None,
    progress: Callable[[str], None] | None = None,
    keep_truth: bool = False,
    direct: bool = False,
) -> GenerationResult:
    """Simulate `spec` and insert the events and the users dimension rows into the store
    (`direct`: through `events` and its views, as the capture path does, not staged)."""
    import pandas as pd

    db = db or store()
    started = time.perf_counter()
    start_ms = int(spec.start_at.timestamp() * 1000)
    end_ms = int(spec.end_at.timestamp() * 1000)
    span = (end_ms - start_ms) / DAY_MS
    params = {"seed": spec.seed, "prefix": spec.prefix}
    result = GenerationResult()
    loader = FrameLoader(db)
    try:
        with db.session(), StagedRows(db, direct=direct) as rows:
            for first in range(0, spec.users, USERS_PER_CHUNK):
                n = min(USERS_PER_CHUNK, spec.users - first)
                rng = np.random.default_rng([spec.seed, first])
                users = _simulate_users(rng, first, n, span)
                frames = _simulate_events(rng, users, span)
                ids = first + np.arange(n)
                batch, selects = [], []
                for event, cols in frames.items():
                    u, day = cols.pop("u"), cols.pop("day")
                    keep = day < span
                    if not keep.all():
                        u, day = u[keep], day[keep]
                        cols = {k: v[keep] for k, v in cols.items()}
                    if not len(u):
                        continue
                    sess = cols.pop("sess")
                    platform = cols.get("platform")
                    mobile = (platform if platform is not None else users.platform[u]) < 2
                    batch.append(
                        {
                            "n": (np.uint64(first) << np.uint64(24))
                            + np.arange(len(u), dtype=np.uint64),
                            "u": ids[u],
                            "ts": start_ms + np.round(day * DAY_MS).astype(np.int64),
                            "sess": np.where(sess > 0, sess + (first << 28), 0),
                            **cols,
                            "user_tier": users.tier_at(u, day),
                            "country": users.country[u],
                            "is_mobile": mobile.astype(np.uint8),
                        }
                    )
                    selects.append((event, [*cols, *ENRICHMENT]))
                    result.per_event[event] = result.per_event.get(event, 0) + len(u)
                    result.events += len(u)
                if batch:
                    loader.load(
                        batch,
                        lambda sources, selects=selects: events_insert_sql(
                            [
                                _events_rows(event, props, source)
                                for (event, props), source in zip(selects, sources, strict=True)
                            ],
                            rows.table,
                        ),
                        params,
                    )
                    rows.publish()
                final_tier = users.tier_at(np.arange(n), np.full(n, span - 1e-6))
                loader.load(
                    [
                        {
                            "u": ids,
                            "ts": start_ms + np.round(users.signup * DAY_MS).astype(np.int64),
                            "user_tier": final_tier,
                            "country": users.country,
                            "signup_source": users.source,
                            "updated_ms": np.full(n, end_ms, np.int64),
                        }
                    ],
                    lambda sources: _USERS_SELECT.replace("<source>", sources[0]),
                    params,
                )
                result.users += n
                if keep_truth:
                    result.truth.append(_truth_frame(pd, spec, users, ids, start_ms, span))
                if progress:
                    progress(f"{result.users}/{spec.users} users, {result.events} events")
    finally:
        loader.close()
    result.seconds = time.perf_counter() - started
    return result


def _truth_frame(pd, spec, users: _Users, ids, start_ms: int, span: float):
    """The latent facts per user, for checking analyses: churned_at is NaT if not churned."""

    def at(day):
        ms = start_ms + np.round(np.where(day < span, day, np.nan) * DAY_MS)
        return pd.to_datetime(ms, unit="ms", utc=True)

    return pd.DataFrame(
        {
            "user_id": [f"{spec.prefix}{i:06d}" for i in ids],
            "signup_at": at(users.signup),
            "churned_at": at(users.churn),
            "converted_at": at(users.conv),
            "satisfaction": users.satisfaction,
            "session_rate": users.rate,
        }
    )


# --- capture payloads ---------------------------------------------------------------------

# The label tuple of each coded column (the Python twin of _PROPERTY_SQL's arrays).
_CODED = {
    "signup_source": SIGNUP_SOURCES,
    "platform": PLATFORMS,
    "feature": FEATURES,
    "book_type": BOOK_TYPES,
    "video_style": VIDEO_STYLES,
    "ai_service": AI_SERVICES,
    "category": TICKET_CATEGORIES,
    "tier": TIERS,
    "previous_tier": TIERS,
    "reason": CANCEL_REASONS,
}
# What a client sends per platform: agents the capture path's enrichment reads as mobile,
# mobile and desktop (an Android agent without "Mobile" would pass for a tablet), and one
# public address per country of COUNTRIES that its IP lookup places in that country.
CAPTURE_AGENTS = (
    "book2video-ios/4.2 (iPhone; iOS 18.1)",
    "Mozilla/5.0 (Linux; Android 15; Pixel 8) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36",
    _USER_AGENTS[2],
)
CAPTURE_IPS = (
    "8.8.8.8",
    "81.2.69.142",
    "193.99.144.80",
    "80.67.169.12",
    "49.44.0.1",
    "200.160.2.3",
    "24.48.0.1",
    "130.206.1.1",
    "133.11.0.1",
    "1.128.0.1",
)


def capture_payloads(spec: GenerationSpec, *, limit: int | None = None) -> Iterator[dict]:
    """The events `generate` writes for `spec`, as a client sends them to `POST /api/events/`:
    in time order within each chunk of users, at most `limit` of them.

    The same users, times and properties; what the capture path adds is left to it: the uuid,
    and the enrichment (user_tier from the users dimension, device_type from the user agent,
    geo_country from the IP). The same spec (with an `end`) gives the same payloads."""
    start_ms = int(spec.start_at.timestamp() * 1000)
    span = (int(spec.end_at.timestamp() * 1000) - start_ms) / DAY_MS
    sent = 0
    for first in range(0, spec.users, USERS_PER_CHUNK):
        n = min(USERS_PER_CHUNK, spec.users - first)
        rng = np.random.default_rng([spec.seed, first])
        users = _simulate_users(rng, first, n, span)
        frames = _simulate_events(rng, users, span)
        parts = [
            _payload_part(spec, event, cols, users, start_ms, span)
            for event, cols in frames.items()
        ]
        days = np.concatenate([day for day, _ in parts])
        which = np.concatenate([np.full(len(day), k) for k, (day, _) in enumerate(parts)])
        row = np.concatenate([np.arange(len(day)) for day, _ in parts])
        for i in np.argsort(days, kind="stable"):
            yield parts[which[i]][1](row[i])
            sent += 1
            if limit is not None and sent >= limit:
                return


def _payload_part(spec, event: str, cols: dict, users: _Users, start_ms: int, span: float):
    """(days, payload of row i) for one event type's frame of one chunk."""
    keep = cols["day"] < span
    cols = {k: v[keep] for k, v in cols.items()}
    u, day, sess = cols.pop("u"), cols.pop("day"), cols.pop("sess")
    platform = cols.get("platform", users.platform[u])
    stamps = np.datetime_as_string(
        (start_ms + np.round(day * DAY_MS).astype(np.int64)).astype("datetime64[ms]"),
        unit="ms",
        timezone="UTC",
    ).tolist()
    user_ids = [f"{spec.prefix}{i:06d}" for i in (users.first + u).tolist()]
    sessions = np.where(sess > 0, sess + (users.first << 28), 0).tolist()
    agents = np.take(CAPTURE_AGENTS, platform).tolist()
    ips = np.take(CAPTURE_IPS, users.country[u]).tolist()
    props = {k: (np.take(_CODED[k], v) if k in _CODED else v).tolist() for k, v in cols.items()}
    name = str(event)

    def payload(i: int) -> dict:
        out = {
            "event": name,
            "user_id": user_ids[i],
            "timestamp": stamps[i],
            "properties": {k: v[i] for k, v in props.items()},
            "user_agent": agents[i],
            "ip": ips[i],
        }
        if sessions[i]:
            out["session_id"] = f"{sessions[i]:x}"
        return out

    return day, payload
