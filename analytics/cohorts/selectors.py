"""Reads of saved cohorts: members from the analytics store, and the filter every analysis
applies for `in_cohort`."""

from __future__ import annotations

from dataclasses import dataclass

from analytics.cohorts.models import Cohort
from analytics.product.common import query_timeout
from analytics.store import store
from core.errors import InvalidRequest


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
        raise InvalidRequest(field, f"no cohort with id {cohort_id}")
    if cohort.version == 0:
        raise InvalidRequest(field, f"cohort {cohort_id} has not been computed yet")
    return CohortFilter(cohort.pk, cohort.version)


def cohort_choices() -> list[tuple[int, str]]:
    """Computed cohorts, for the analyses' `in_cohort` selectors."""
    return list(Cohort.objects.filter(version__gt=0).values_list("pk", "name"))
