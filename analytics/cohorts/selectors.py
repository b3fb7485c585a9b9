"""Reads of saved cohorts: members from the analytics store, and the filter every analysis
applies for `in_cohort`."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from django.conf import settings

from analytics.cohorts.models import Cohort
from analytics.product.common import query_timeout
from analytics.store import store
from core.errors import MissingReference, StateConflict


def cohort_members(*, cohort: Cohort, limit: int, offset: int) -> list[str]:
    rows = store().query(
        "SELECT user_id FROM cohort_members WHERE cohort_id = {cohort:UInt64} "
        "AND version = {version:UInt32} ORDER BY user_id LIMIT {limit:UInt32} OFFSET {offset:UInt64}",
        {"cohort": cohort.pk, "version": cohort.version, "limit": limit, "offset": offset},
        timeout=query_timeout(),
    )
    return [row["user_id"] for row in rows]


@dataclass(frozen=True)
class CohortFilter:
    """Only the members of one computed version of a cohort. The version is part of every
    cached result's key, so a recomputation never serves results of the old members."""

    cohort_id: int
    version: int

    def sql(self, column: str = "user_id") -> str:
        return (
            f"{column} IN (SELECT user_id FROM cohort_members WHERE "
            "cohort_id = {in_cohort:UInt64} AND version = {in_cohort_version:UInt32})"
        )

    @property
    def params(self) -> dict:
        return {"in_cohort": self.cohort_id, "in_cohort_version": self.version}


def cohort_filter(cohort_id: int | None, *, field: str = "in_cohort") -> CohortFilter | None:
    if cohort_id is None:
        return None
    cohort = Cohort.objects.filter(pk=cohort_id).only("pk", "version").first()
    if cohort is None:
        raise MissingReference(field, f"no cohort with id {cohort_id}")
    if cohort.version == 0:
        raise StateConflict(field, f"cohort {cohort_id} has not been computed yet")
    return CohortFilter(cohort.pk, cohort.version)


def cohort_choices() -> list[tuple[int, str]]:
    """Computed cohorts, for the analyses' `in_cohort` selectors."""
    return list(Cohort.objects.filter(version__gt=0).values_list("pk", "name"))


class _Members:
    """Each process's copy of the member sets that experiment targeting reads: one per
    (cohort, version), the version re-read every EXPERIMENTS_CACHE_SECONDS, so a
    recomputation reaches assignment as quickly as an experiment change does."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._versions: dict[int, tuple[float, int]] = {}
        self._sets: dict[tuple[int, int], frozenset[str]] = {}

    def version(self, cohort_id: int) -> int:
        cached = self._versions.get(cohort_id)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        version = Cohort.objects.filter(pk=cohort_id).values_list("version", flat=True).first() or 0
        self._versions[cohort_id] = (time.monotonic() + settings.EXPERIMENTS_CACHE_SECONDS, version)
        return version

    def get(self, cohort_id: int) -> frozenset[str]:
        version = self.version(cohort_id)
        if not version:
            return frozenset()
        key = (cohort_id, version)
        if key not in self._sets:
            with self._lock:
                if key not in self._sets:
                    rows = store().query(
                        "SELECT user_id FROM cohort_members WHERE cohort_id = {c:UInt64} "
                        "AND version = {v:UInt32}",
                        {"c": cohort_id, "v": version},
                    )
                    for old in [k for k in self._sets if k[0] == cohort_id]:
                        del self._sets[old]
                    self._sets[key] = frozenset(r["user_id"] for r in rows)
        return self._sets[key]

    def forget(self) -> None:
        with self._lock:
            self._versions.clear()
            self._sets.clear()


cohort_member_sets = _Members()


def cohort_contains(cohort_id: int, user_id: str) -> bool:
    return user_id in cohort_member_sets.get(cohort_id)


def cohort_saved_groups(cohort_ids: set[int], *, prefix: str) -> dict[str, list[str]]:
    """GrowthBook saved groups (`savedGroups` of the SDK payload) of these cohorts' members."""
    return {
        f"{prefix}{cohort_id}": sorted(cohort_member_sets.get(cohort_id))
        for cohort_id in sorted(cohort_ids)
    }


AUDIENCE_PAGE = 10_000


def audience_members(cohort_id: int):
    """A computed cohort's current members in pages (core.audiences' reader for push
    broadcasts)."""
    from core.audiences import AudienceUnavailable

    cohort = Cohort.objects.filter(pk=cohort_id).first()
    if cohort is None or not cohort.version:
        raise AudienceUnavailable(f"no computed cohort with id {cohort_id}")
    offset = 0
    while True:
        page = cohort_members(cohort=cohort, limit=AUDIENCE_PAGE, offset=offset)
        if page:
            yield page
        if len(page) < AUDIENCE_PAGE:
            return
        offset += AUDIENCE_PAGE


def broadcast_opens(event: str, broadcast_ids: list[int]) -> dict[int, int]:
    """Distinct users per broadcast id whose `event` (the app's open report) names it in the
    `broadcast_id` property (a string or a number)."""
    rows = store().query(
        "SELECT if(toUInt64OrZero(JSONExtractRaw(properties, 'broadcast_id')) > 0, "
        "toUInt64OrZero(JSONExtractRaw(properties, 'broadcast_id')), "
        "toUInt64OrZero(JSONExtractString(properties, 'broadcast_id'))) AS bid, "
        "uniqExact(user_id) AS users FROM events WHERE event = {event:String} "
        "AND bid IN {ids:Array(UInt64)} GROUP BY bid",
        {"event": event, "ids": [int(i) for i in broadcast_ids]},
    )
    return {int(row["bid"]): int(row["users"]) for row in rows}
