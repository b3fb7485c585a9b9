"""Targeting a saved cohort (`$inCohort`): the server's assignment, and the SDK payload's
saved group held to the real GrowthBook SDK (`growthbook` from PyPI), user by user."""

import pytest
from growthbook import GrowthBook

from analytics.cohorts import services as cohort_services
from analytics.cohorts.selectors import cohort_member_sets
from experiments.assignment import assignments_for
from experiments.conditions import ConditionError, condition_validate

pytestmark = pytest.mark.django_db
MEMBERS = ["u1", "u3", "u5"]


@pytest.fixture(autouse=True)
def _fresh_member_sets():
    cohort_member_sets.forget()  # ids repeat across rolled-back tests
    yield
    cohort_member_sets.forget()


@pytest.fixture
def cohort(analytics_store, pm):
    users = cohort_services.user_ids_from_list(MEMBERS)
    return cohort_services.static_cohort_create(name="beta", users=users, source="list", by=pm)


def test_server_and_sdk_target_the_cohort_members(cohort, running, publishable_key, client):
    running(key="beta-only", conditions={"id": {"$inCohort": cohort.pk}})
    running(key="not-beta", conditions={"id": {"$not": {"$inCohort": cohort.pk}}})
    payload = client.get(f"/api/features/{publishable_key[1]}").json()
    group = f"cohort-{cohort.pk}"
    assert payload["savedGroups"] == {group: MEMBERS}
    rule = payload["features"]["beta-only"]["rules"][0]
    assert rule["condition"] == {"id": {"$inGroup": group}}
    for i in range(8):
        user = f"u{i}"
        server, _ = assignments_for(user, {})
        assert ("beta-only" in server) == (user in MEMBERS)
        assert ("not-beta" in server) == (user not in MEMBERS)
        gb = GrowthBook(
            attributes={"id": user},
            features=payload["features"],
            saved_groups=payload["savedGroups"],
        )
        local = {
            key: gb.eval_feature(key).value
            for key in payload["features"]
            if gb.eval_feature(key).source == "experiment"
        }
        gb.destroy()
        assert local == server


def test_etag_changes_when_the_members_change(cohort, running, publishable_key, client, pm):
    running(key="beta-only", conditions={"id": {"$inCohort": cohort.pk}})
    first = client.get(f"/api/features/{publishable_key[1]}")["ETag"]
    users = cohort_services.user_ids_from_list(["u9"])
    other = cohort_services.static_cohort_create(name="other", users=users, source="list", by=pm)
    running(key="other-only", conditions={"id": {"$inCohort": other.pk}})
    assert client.get(f"/api/features/{publishable_key[1]}")["ETag"] != first


@pytest.mark.parametrize("value", ["7", 0, True, None])
def test_in_cohort_needs_a_cohort_id(value):
    with pytest.raises(ConditionError, match="inCohort"):
        condition_validate({"id": {"$inCohort": value}})
