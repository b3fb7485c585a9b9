"""Cohort services: computing versions with a size history, references, static cohorts,
and the scheduled computation through a real Celery worker."""

import datetime as dt
import time

import pytest

from analytics.cohorts import definition as definitions
from analytics.cohorts import services
from analytics.cohorts.models import Cohort
from analytics.cohorts.selectors import cohort_members
from analytics.product.tests.product_data import load, rows_from_spec
from core.errors import InvalidRequest
from core.models import AuditEntry

pytestmark = pytest.mark.django_db
START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
AS_OF = dt.datetime(2024, 2, 1, tzinfo=dt.UTC)


def _rows():
    spec = [
        ("u1", "render", 25, {"user_tier": "pro"}),
        ("u1", "render", 26, {"user_tier": "pro"}),
        ("u2", "render", 2, {"user_tier": "free"}),
        ("u3", "signup", 28, {"user_tier": "free"}),
        ("u4", "render", 40, {"user_tier": "pro"}),  # after AS_OF: not yet a user
    ]
    return rows_from_spec(spec, start=START)


RENDERED_TWICE = {
    "op": "and",
    "rules": [{"type": "event", "event": "render", "operator": "gte", "count": 2, "days": 30}],
}


def _dynamic(name, definition):
    normal = definitions.validate(definition)
    return Cohort.objects.create(name=name, kind=Cohort.Kind.DYNAMIC, definition=normal)


def test_compute_writes_a_version_and_its_size(analytics_store):
    load(_rows())
    cohort = _dynamic("renderers", RENDERED_TWICE)
    services.cohort_compute(cohort_id=cohort.pk, trigger="test", as_of=AS_OF)
    cohort.refresh_from_db()
    assert (cohort.version, cohort.size, cohort.state) == (1, 1, "ready")
    assert cohort_members(cohort=cohort, limit=10, offset=0) == ["u1"]
    services.cohort_compute(
        cohort_id=cohort.pk, trigger="test", as_of=START + dt.timedelta(days=60)
    )
    cohort.refresh_from_db()
    assert (cohort.version, cohort.size) == (2, 0)
    assert [(s.version, s.size) for s in cohort.sizes.all()] == [(2, 0), (1, 1)]


def test_cohort_of_cohorts_and_cycles(analytics_store, pm):
    load(_rows())
    base = services.cohort_create(name="renderers", definition=RENDERED_TWICE, by=pm)
    services.cohort_compute(cohort_id=base.pk, as_of=AS_OF)
    outside = services.cohort_create(
        name="not renderers",
        definition={"rules": [{"type": "cohort", "cohort": base.pk, "member": False}]},
        by=pm,
    )
    services.cohort_compute(cohort_id=outside.pk, as_of=AS_OF)
    outside.refresh_from_db()
    assert cohort_members(cohort=outside, limit=10, offset=0) == ["u2", "u3"]
    with pytest.raises(InvalidRequest, match="contain itself"):
        services.cohort_update(
            cohort=base,
            by=pm,
            definition={"rules": [{"type": "cohort", "cohort": outside.pk}]},
        )
    with pytest.raises(services.CohortStateError, match="used by"):
        services.cohort_delete(cohort=base, by=pm)
    with pytest.raises(InvalidRequest, match="does not exist"):
        services.cohort_create(
            name="x", definition={"rules": [{"type": "cohort", "cohort": 999}]}, by=pm
        )
    assert AuditEntry.objects.filter(action="cohort.create").count() == 2


def test_static_cohort_from_csv_keeps_the_valid_lines(analytics_store, pm):
    data = b"user_id\nu1\n\nu2\nu1\n" + b"x" * 201 + b"\n  u3 ,extra\n"
    users = services.user_ids_from_csv(data)
    assert users.user_ids == ["u1", "u2", "u3"]
    assert users.problems == [{"line": 6, "problem": "longer than 200 characters"}]
    cohort = services.static_cohort_create(name="list", users=users, source="csv", by=pm)
    assert (cohort.kind, cohort.version, cohort.size) == ("static", 1, 3)
    assert cohort_members(cohort=cohort, limit=2, offset=1) == ["u2", "u3"]
    with pytest.raises(services.CohortStateError):
        services.cohort_compute_request(cohort=cohort, by=pm)
    with pytest.raises(InvalidRequest, match="UTF-8"):
        services.user_ids_from_csv(b"\xff\xfe")


def test_scheduled_computation_runs_on_a_worker(analytics_store, celery_worker, pm):
    load(_rows())
    cohort = _dynamic(
        "free users", {"rules": [{"type": "property", "key": "user_tier", "value": "free"}]}
    )
    services.cohorts_compute_all()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        cohort.refresh_from_db()
        if cohort.state == "ready":
            break
        time.sleep(0.2)
    assert (cohort.size, cohort.sizes.get().trigger) == (2, "schedule")


def test_demo_cohorts_are_computed_once(analytics_store):
    import io

    from analytics.cohorts.demo import DEMO_COHORTS, seed

    load(_rows())
    seed(stdout=io.StringIO())
    seed(stdout=io.StringIO())
    cohorts = Cohort.objects.all()
    assert len(cohorts) == len(DEMO_COHORTS)
    assert all(c.state == "ready" and c.version == 1 for c in cohorts)
