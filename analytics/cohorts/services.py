"""Writes of saved cohorts: create, change, delete, compute (into the analytics store), and
static cohorts from a list of user ids (a CSV upload or an analysis's drill-down list)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from analytics.cohorts import definition as definitions
from analytics.cohorts.models import Cohort, CohortSize
from analytics.store import store
from core.errors import (
    DomainError,
    MissingReference,
    StateConflict,
    Unprocessable,
)
from core.services import actor_label, audit_record

log = logging.getLogger(__name__)

MAX_USER_ID = 200
MAX_STATIC_MEMBERS = 1_000_000
MAX_REPORTED_PROBLEMS = 100
COMPUTE_TIMEOUT_SECONDS = 600.0


class CohortStateError(DomainError):
    pass


def _check_references(*, cohort_id: int | None, definition: dict) -> None:
    """Every referenced cohort exists, and following references never comes back to this one."""
    refs = definitions.referenced_cohorts(definition)
    known = dict(Cohort.objects.filter(pk__in=refs).values_list("pk", "definition"))
    for ref in sorted(refs - set(known)):
        raise MissingReference("definition", f"cohort {ref} does not exist")
    if cohort_id is None:
        return
    seen, todo = set(), list(refs)
    while todo:
        ref = todo.pop()
        if ref == cohort_id:
            raise Unprocessable("definition", "a cohort cannot contain itself, even indirectly")
        if ref in seen:
            continue
        seen.add(ref)
        nested = Cohort.objects.filter(pk=ref).values_list("definition", flat=True).first()
        todo.extend(definitions.referenced_cohorts(nested or {}))


@transaction.atomic
def cohort_create(
    *, name: str, description: str = "", definition: dict, by, queue_compute: bool = True
) -> Cohort:
    normal = definitions.validate(definition)
    _check_references(cohort_id=None, definition=normal)
    if Cohort.objects.filter(name=name).exists():
        raise StateConflict("name", f"a cohort named {name!r} already exists")
    cohort = Cohort.objects.create(
        name=name,
        description=description,
        kind=Cohort.Kind.DYNAMIC,
        definition=normal,
        created_by=actor_label(by)[:200],
    )
    audit_record(actor=by, action="cohort.create", target=cohort, detail=str(normal)[:2000])
    if queue_compute:
        cohort_compute_request(cohort=cohort, by=by, trigger="created")
    return cohort


@transaction.atomic
def cohort_update(
    *,
    cohort: Cohort,
    by,
    name: str | None = None,
    description: str | None = None,
    definition: dict | None = None,
) -> Cohort:
    cohort = Cohort.objects.select_for_update().get(pk=cohort.pk)
    changes = []
    if name is not None and name != cohort.name:
        if Cohort.objects.filter(name=name).exclude(pk=cohort.pk).exists():
            raise StateConflict("name", f"a cohort named {name!r} already exists")
        changes.append(f"name {cohort.name!r} -> {name!r}")
        cohort.name = name
    if description is not None:
        cohort.description = description
    recompute = False
    if definition is not None:
        if cohort.kind == Cohort.Kind.STATIC:
            raise Unprocessable("definition", "a static cohort has no definition")
        normal = definitions.validate(definition)
        _check_references(cohort_id=cohort.pk, definition=normal)
        if normal != cohort.definition:
            changes.append(f"definition -> {normal}")
            cohort.definition = normal
            recompute = True
    cohort.save()
    audit_record(actor=by, action="cohort.update", target=cohort, detail="; ".join(changes)[:2000])
    if recompute:
        cohort_compute_request(cohort=cohort, by=by, trigger="changed")
    return cohort


@transaction.atomic
def cohort_delete(*, cohort: Cohort, by) -> None:
    users = [
        c.name
        for c in Cohort.objects.exclude(pk=cohort.pk).filter(kind=Cohort.Kind.DYNAMIC)
        if cohort.pk in definitions.referenced_cohorts(c.definition)
    ]
    if users:
        raise CohortStateError(f"cohort {cohort.name!r} is used by {', '.join(sorted(users))}")
    audit_record(actor=by, action="cohort.delete", target=cohort)
    cohort_id = cohort.pk
    cohort.delete()
    transaction.on_commit(lambda: _delete_members(cohort_id=cohort_id, below=None))


def cohort_compute_request(*, cohort: Cohort, by, trigger: str = "on_demand") -> Cohort:
    """Queue a computation (on the analytics queue); a static cohort has nothing to compute."""
    from analytics.cohorts.tasks import compute_cohort

    if cohort.kind == Cohort.Kind.STATIC:
        raise CohortStateError("a static cohort's members are set by its upload, not computed")
    Cohort.objects.filter(pk=cohort.pk).exclude(state=Cohort.State.COMPUTING).update(
        state=Cohort.State.QUEUED
    )
    cohort.refresh_from_db()
    if trigger == "on_demand":
        audit_record(actor=by, action="cohort.compute", target=cohort)
    transaction.on_commit(lambda: compute_cohort.delay(cohort.pk, trigger))
    return cohort


def _reserve_version(cohort_id: int) -> tuple[Cohort, int]:
    with transaction.atomic():
        cohort = Cohort.objects.select_for_update().get(pk=cohort_id)
        cohort.last_version += 1
        cohort.state = Cohort.State.COMPUTING
        cohort.save(update_fields=["last_version", "state", "updated_at"])
        return cohort, cohort.last_version


def _publish(*, cohort_id: int, version: int, size: int, seconds: float, trigger: str) -> None:
    """Serve `version` unless a newer one is already served, and record its size."""
    now = timezone.now()
    with transaction.atomic():
        cohort = Cohort.objects.select_for_update().get(pk=cohort_id)
        CohortSize.objects.create(
            cohort=cohort,
            version=version,
            size=size,
            computed_at=now,
            seconds=round(seconds, 3),
            trigger=trigger[:50],
        )
        if version > cohort.version:
            cohort.version, cohort.size, cohort.computed_at = version, size, now
        cohort.state, cohort.error = Cohort.State.READY, ""
        cohort.save()
    transaction.on_commit(lambda: _delete_members(cohort_id=cohort_id, below=cohort.version))


def _delete_members(*, cohort_id: int, below: int | None) -> None:
    """Drop member sets no one reads any more; a failure only leaves rows behind."""
    condition = "cohort_id = {cohort:UInt64}"
    if below is not None:
        condition += " AND version < {below:UInt32}"
    try:
        store().command(
            f"DELETE FROM cohort_members WHERE {condition}",
            {"cohort": cohort_id, "below": below or 0},
        )
    except Exception:  # old sets are harmless; the next computation deletes them
        log.warning("could not delete old members of cohort %s", cohort_id, exc_info=True)


def cohort_compute(
    *, cohort_id: int, trigger: str = "schedule", as_of: dt.datetime | None = None
) -> Cohort | None:
    """Compute a behavioural cohort's members at `as_of` (now) into a new version. Safe to run
    twice: each run writes its own version and the newest wins."""
    cohort = Cohort.objects.filter(pk=cohort_id).first()
    if cohort is None or cohort.kind != Cohort.Kind.DYNAMIC:
        return cohort
    cohort, version = _reserve_version(cohort_id)
    as_of = as_of or timezone.now()
    refs = definitions.referenced_cohorts(cohort.definition)
    versions = dict(Cohort.objects.filter(pk__in=refs).values_list("pk", "version"))
    sql, params = definitions.members_sql(cohort.definition, as_of=as_of, versions=versions)
    started = time.monotonic()
    db = store()
    try:
        with db.session():
            db.command(
                "INSERT INTO cohort_members (cohort_id, version, user_id) "
                f"SELECT {{cohort_id:UInt64}}, {{version:UInt32}}, user_id FROM ({sql})",
                {**params, "cohort_id": cohort_id, "version": version},
                timeout=COMPUTE_TIMEOUT_SECONDS,
            )
            size = _count(db, cohort_id, version)
    except Exception as exc:
        Cohort.objects.filter(pk=cohort_id).update(state=Cohort.State.FAILED, error=str(exc)[:500])
        raise
    _publish(
        cohort_id=cohort_id,
        version=version,
        size=size,
        seconds=time.monotonic() - started,
        trigger=trigger,
    )
    cohort.refresh_from_db()
    return cohort


def _count(db, cohort_id: int, version: int) -> int:
    rows = db.query(
        "SELECT count() AS n FROM cohort_members "
        "WHERE cohort_id = {cohort_id:UInt64} AND version = {version:UInt32}",
        {"cohort_id": cohort_id, "version": version},
    )
    return int(rows[0]["n"]) if rows else 0


def cohorts_compute_all(*, trigger: str = "schedule") -> list[int]:
    """Queue every behavioural cohort (the beat schedule's entry); returns their ids."""
    from analytics.cohorts.tasks import compute_cohort

    ids = list(Cohort.objects.filter(kind=Cohort.Kind.DYNAMIC).values_list("pk", flat=True))
    # a cohort that reads another is computed after it when ids follow creation order
    for cohort_id in sorted(ids):
        compute_cohort.delay(cohort_id, trigger)
    return ids


# --- static cohorts


@dataclass
class UserIdList:
    """User ids read from an upload or a list: the valid ones (deduplicated, in order) and the
    problems of the others (1-based line or index)."""

    user_ids: list[str] = field(default_factory=list)
    problems: list[dict] = field(default_factory=list)
    rejected: int = 0

    def add(self, value, where: int, seen: set) -> None:
        problem = None
        if not isinstance(value, str):
            problem = "a user id must be a string"
        else:
            value = value.strip()
            if not value:
                problem = "empty user id"
            elif len(value) > MAX_USER_ID:
                problem = f"longer than {MAX_USER_ID} characters"
        if problem is None and len(seen) >= MAX_STATIC_MEMBERS and value not in seen:
            problem = f"more than {MAX_STATIC_MEMBERS} users"
        if problem:
            self.rejected += 1
            if len(self.problems) < MAX_REPORTED_PROBLEMS:
                self.problems.append({"line": where, "problem": problem})
            return
        if value not in seen:
            seen.add(value)
            self.user_ids.append(value)


def user_ids_from_list(values: Iterable) -> UserIdList:
    out, seen = UserIdList(), set()
    for i, value in enumerate(values, start=1):
        out.add(value, i, seen)
    return out


def user_ids_from_csv(data: bytes) -> UserIdList:
    """The first column of each row; a first row reading `user_id` (any case) is a header."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Unprocessable("file", f"not UTF-8 text (byte {exc.start})") from exc
    out, seen = UserIdList(), set()
    for line_no, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if line_no == 1 and row and row[0].strip().lower() in ("user_id", "user", "id"):
            continue
        if not row or not any(cell.strip() for cell in row):
            continue  # blank lines are layout, not data
        out.add(row[0], line_no, seen)
    return out


def static_cohort_create(
    *, name: str, description: str = "", users: UserIdList, source: str, by
) -> Cohort:
    """A static cohort of `users` (at least one), written to the store as version 1."""
    if not users.user_ids:
        raise Unprocessable("user_ids" if source == "list" else "file", "no valid user id")
    with transaction.atomic():
        if Cohort.objects.filter(name=name).exists():
            raise StateConflict("name", f"a cohort named {name!r} already exists")
        cohort = Cohort.objects.create(
            name=name,
            description=description,
            kind=Cohort.Kind.STATIC,
            definition={"source": source},
            created_by=actor_label(by)[:200],
            last_version=1,
            state=Cohort.State.COMPUTING,
        )
        audit_record(
            actor=by,
            action="cohort.create_static",
            target=cohort,
            detail=f"{len(users.user_ids)} users from {source}, {users.rejected} rejected",
        )
    started = time.monotonic()
    rows = [{"cohort_id": cohort.pk, "version": 1, "user_id": u} for u in users.user_ids]
    try:
        store().insert("cohort_members", rows)
    except Exception:
        cohort.delete()  # nothing half-made stays behind
        raise
    _publish(
        cohort_id=cohort.pk,
        version=1,
        size=len(users.user_ids),
        seconds=time.monotonic() - started,
        trigger=source,
    )
    cohort.refresh_from_db()
    return cohort
