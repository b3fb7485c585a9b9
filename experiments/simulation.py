"""Generated exposure and outcome events for an experiment (insert them in bulk with
analytics.store.bulk.rows_insert).

Used by the demo data, the benchmark and the tests. Users are assigned with the real hashing,
so the generated split is what the assignment API would have produced.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from analytics.catalog import Event
from analytics.store import store
from experiments.hashing import bucket_ranges, choose_variation, gb_hash


@dataclass(frozen=True)
class Outcome:
    """Per variant: the chance a user does `event` after exposure, and for a valued event the
    mean of `value_property` (exponentially distributed); `properties` go on every such event."""

    event: str
    rates: dict[str, float]
    value_property: str = ""
    value_means: dict[str, float] = field(default_factory=dict)
    properties: dict[str, object] = field(default_factory=dict)


def new_users(
    *, users: int, start: dt.datetime, days: float, rng: np.random.Generator, prefix: str = "sim"
) -> list[tuple[str, dt.datetime]]:
    """`users` new users named `{prefix}-{i}`, each exposed at a random moment of the `days`
    from `start` (an audience for `simulated_events`)."""
    offsets = rng.uniform(0, days * 86400, size=users)
    return [
        (f"{prefix}-{i}", start + dt.timedelta(seconds=float(offsets[i]))) for i in range(users)
    ]


def simulated_events(
    *,
    key: str,
    seed: str,
    variant_keys: list[str],
    weights: list[float],
    audience: Sequence[tuple[str, dt.datetime]],
    outcomes: list[Outcome],
    lost_exposures: dict[str, float] | None = None,
    rng: np.random.Generator | None = None,
    now: dt.datetime | None = None,
    exposure_properties: dict[str, dict] | None = None,
) -> list[dict]:
    """Event rows for `audience` (each user and when they are exposed): each user's
    exposure(s) and outcomes; `lost_exposures` drops that share of a variant's users entirely
    (exposure logging lost, the cause of a sample ratio mismatch); `exposure_properties`: per
    user id, what capture's enrichment would add to their exposures (geo_country, ...)."""
    rng = rng or np.random.default_rng(0)
    now = now or dt.datetime.now(dt.UTC)
    ranges = bucket_ranges(len(variant_keys), 1.0, weights)
    lost = lost_exposures or {}
    rows: list[dict] = []
    for user_id, exposed_at in audience:
        index = choose_variation(gb_hash(seed, user_id, 2), ranges)
        if index < 0:
            continue
        variant = variant_keys[index]
        if lost.get(variant) and rng.random() < lost[variant]:
            continue
        if exposed_at > now:
            continue
        extra = (exposure_properties or {}).get(user_id, {})
        props = json.dumps({**extra, "experiment_id": key, "variant": variant})
        for repeat in range(1 + int(rng.random() < 0.3)):  # some users are assigned twice
            if exposed_at + REPEAT_GAP * repeat <= now:  # never an event from the future
                rows.append(_row(Event.EXPERIMENT_ASSIGNMENT, user_id, exposed_at, props, repeat))
        for outcome in outcomes:
            if rng.random() >= outcome.rates.get(variant, 0.0):
                continue
            at = exposed_at + dt.timedelta(seconds=float(rng.uniform(60, 5 * 86400)))
            if at > now:
                continue
            values = dict(outcome.properties)
            if outcome.value_property:
                mean = outcome.value_means.get(variant, 1.0)
                values[outcome.value_property] = round(float(rng.exponential(mean)), 2)
            rows.append(_row(outcome.event, user_id, at, json.dumps(values), 0))
    return rows


REPEAT_GAP = dt.timedelta(minutes=30)  # between a user's repeated assignments


def _row(event: str, user_id: str, at: dt.datetime, properties: str, repeat: int) -> dict:
    return {
        "uuid": str(uuid.uuid4()),
        "event": str(event),
        "user_id": user_id,
        "timestamp": at + REPEAT_GAP * repeat,
        "properties": properties,
    }


def exposure_events_exist(key: str) -> bool:
    rows = store().query(
        "SELECT count() AS n FROM events WHERE event = {event:String} "
        "AND experiment_id = {key:String}",
        {"event": Event.EXPERIMENT_ASSIGNMENT.value, "key": key},
    )
    return bool(rows and int(rows[0]["n"]) > 0)
