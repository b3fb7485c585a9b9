"""Holdouts: users kept out of a set of experiments by the server and by the real GrowthBook
SDK alike, and their long-run readout held to an independent computation (pandas for the
per-user values, the delta method and Welch's t by hand with scipy)."""

import datetime as dt
import math
import random

import numpy as np
import pandas as pd
import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from growthbook import GrowthBook
from scipy import stats as sps

from analytics.catalog import Event
from analytics.store.bulk import rows_insert
from core.models import AuditEntry
from experiments.assignment import assign
from experiments.hashing import bucket_ranges, choose_variation, gb_hash
from experiments.models import HOLDOUT_CONTROL, HOLDOUT_TREATMENT, Experiment, Holdout
from experiments.results import holdout_results
from experiments.services import HoldoutStateError, holdout_end, holdout_start
from experiments.tests.conftest import event_row, exposure_row
from experiments.tests.factories import ExperimentFactory, MetricFactory
from experiments.tests.test_sdk import random_attributes, running_mix

pytestmark = pytest.mark.django_db


def _holdout(*experiments, percentage=0.1, key="h1", **kwargs) -> Holdout:
    """A running holdout over `experiments` (set while they were drafts, as admin requires)."""
    holdout = Holdout.objects.create(key=key, name=key.upper(), percentage=percentage, **kwargs)
    holdout.experiments.set(experiments)
    Holdout.objects.filter(pk=holdout.pk).update(
        status=Holdout.Status.RUNNING, started_at=timezone.now() - dt.timedelta(days=30)
    )
    holdout.refresh_from_db()
    return holdout


def _group(holdout: Holdout, user_id: str) -> str | None:
    """The holdout group by GrowthBook's hashing, written out from the rule's definition."""
    ranges = bucket_ranges(2, 2 * holdout.percentage, [0.5, 0.5])
    index = choose_variation(gb_hash("$holdout:" + holdout.key, user_id, 2), ranges)
    return [HOLDOUT_CONTROL, HOLDOUT_TREATMENT][index] if index >= 0 else None


def _sdk(features: dict, user_id: str, attributes: dict) -> tuple[dict, dict]:
    """(experiments the SDK puts the user in, the holdout groups it tracked)."""
    tracked: dict[str, str] = {}
    gb = GrowthBook(
        attributes={"id": user_id, **attributes},
        features=features,
        on_experiment_viewed=lambda experiment, result, **_: tracked.__setitem__(
            experiment.key, result.value
        ),
    )
    out = {}
    for key in features:
        if key.startswith("$holdout:"):
            continue
        result = gb.eval_feature(key)
        if result.source == "experiment":
            out[key] = result.value
    gb.destroy()
    holdouts = {k.removeprefix("$holdout:"): v for k, v in tracked.items() if k[0] == "$"}
    return out, holdouts


def test_sdk_and_server_hold_out_the_same_users_over_thousands(running, publishable_key, client):
    experiments = running_mix(running)
    covered = [e for e in experiments if e.key in ("checkout-cta", "pricing-page", "ns-left")]
    holdout = _holdout(*covered, percentage=0.15)
    features = client.get(f"/api/features/{publishable_key[1]}").json()["features"]
    assert features["$holdout:h1"]["defaultValue"] == "genpop"
    rule = features["$holdout:h1"]["rules"][0]
    assert rule["variations"] == [HOLDOUT_CONTROL, HOLDOUT_TREATMENT]
    assert rule["coverage"] == pytest.approx(0.3) and rule["weights"] == [0.5, 0.5]
    assert features["checkout-cta"]["rules"][0]["parentConditions"] == [
        {"id": "$holdout:h1", "condition": {"value": {"$ne": HOLDOUT_CONTROL}}}
    ]
    assert "parentConditions" not in features["onboarding"]["rules"][0]
    rng = random.Random(5)
    groups = {HOLDOUT_CONTROL: 0, HOLDOUT_TREATMENT: 0, None: 0}
    n = 3000
    for i in range(n):
        user_id = rng.choice([f"user-{i}", str(50_000 + i), f"h{i}@example.com", f"ü-{i}"])
        attributes = random_attributes(rng)
        server, held, _ = assign(user_id, attributes)
        sdk, sdk_held = _sdk(features, user_id, attributes)
        assert sdk == server, (user_id, attributes)
        assert sdk_held == held, user_id
        group = _group(holdout, user_id)
        assert held.get("h1") == group
        groups[group] += 1
        if group == HOLDOUT_CONTROL:
            assert not set(server) & {e.key for e in covered}
    # about 15% held out and 15% measured as the general population
    for group in (HOLDOUT_CONTROL, HOLDOUT_TREATMENT):
        assert abs(groups[group] / n - 0.15) < 4 * math.sqrt(0.15 * 0.85 / n)


def test_holdout_wins_over_a_sticky_bucket_and_ends_when_planned(running):
    experiment = running(key="sticky-one")
    holdout = _holdout(experiment, percentage=0.5)
    held_user = next(f"u{i}" for i in range(100) if _group(holdout, f"u{i}") == HOLDOUT_CONTROL)
    from experiments.models import StickyAssignment

    StickyAssignment.objects.create(
        attribute_value=held_user, experiment_key="sticky-one", variant_key="treatment"
    )
    assert assign(held_user, {}) == ({}, {"h1": HOLDOUT_CONTROL}, [])
    Holdout.objects.filter(pk=holdout.pk).update(ends_at=timezone.now() - dt.timedelta(hours=1))
    from experiments.assignment import running_experiments

    running_experiments.invalidate()
    assert assign(held_user, {}) == ({"sticky-one": "treatment"}, {}, [])


def test_the_hourly_monitor_ends_a_holdout_past_its_planned_end(running):
    from experiments.tasks import monitor_experiments

    due = _holdout(running(key="e1"), key="due")
    Holdout.objects.filter(pk=due.pk).update(ends_at=timezone.now() - dt.timedelta(minutes=1))
    later = _holdout(running(key="e2"), key="later")
    Holdout.objects.filter(pk=later.pk).update(ends_at=timezone.now() + dt.timedelta(days=9))
    monitor_experiments()
    assert Holdout.objects.get(key="due").status == Holdout.Status.ENDED
    assert Holdout.objects.get(key="later").status == Holdout.Status.RUNNING
    entry = AuditEntry.objects.get(action="holdout.end")
    assert entry.actor_label == "monitor:experiments" and entry.detail == "planned end reached"


def test_power_analysis_counts_only_users_not_held_out(analytics_store, pm):
    from experiments.results import experiment_power_analysis

    now = timezone.now()
    rows = [
        event_row(Event.SESSION_START, f"p{i}", now - dt.timedelta(days=2), {}) for i in range(3000)
    ]
    rows += [
        event_row(Event.PROJECT_CREATED, f"p{i}", now - dt.timedelta(days=1), {})
        for i in range(300)
    ]
    rows_insert(table="events", rows=rows)
    experiment = ExperimentFactory(minimum_detectable_effect=0.1)
    alone = experiment_power_analysis(experiment)
    holdout = Holdout.objects.create(key="pw", name="Pw", percentage=0.2)
    holdout.experiments.set([experiment])
    holdout_start(holdout=holdout, by=pm)
    held = experiment_power_analysis(experiment)
    assert held["required_users_per_variant"] == alone["required_users_per_variant"]
    assert held["users_per_variant_per_day"] == pytest.approx(
        alone["users_per_variant_per_day"] * 0.8
    )


def test_concluded_experiment_keeps_held_users_on_control(running, publishable_key, client):
    won = running(key="won")
    holdout = _holdout(won, percentage=0.5)
    won.status = Experiment.Status.CONCLUDED
    won.winner = won.variants.get(key="treatment")
    won.save()
    features = client.get(f"/api/features/{publishable_key[1]}").json()["features"]
    for i in range(300):
        gb = GrowthBook(attributes={"id": f"c{i}"}, features=features)
        expected = "control" if _group(holdout, f"c{i}") == HOLDOUT_CONTROL else "treatment"
        assert gb.eval_feature("won").value == expected
        gb.destroy()


def test_ended_or_draft_holdouts_are_not_served(running, publishable_key, client):
    experiment = running(key="plain")
    holdout = _holdout(experiment)
    holdout_end(holdout=holdout, by=None, reason="done")
    features = client.get(f"/api/features/{publishable_key[1]}").json()["features"]
    assert set(features) == {"plain"} and "parentConditions" not in features["plain"]["rules"][0]
    assert AuditEntry.objects.get(action="holdout.end").detail == "done"


def test_start_needs_draft_experiments_and_is_audited(pm):
    draft = ExperimentFactory(key="later")
    holdout = Holdout.objects.create(key="q3", name="Q3")
    holdout.experiments.set([draft])
    holdout = holdout_start(holdout=holdout, by=pm)
    assert holdout.status == Holdout.Status.RUNNING and holdout.started_at is not None
    assert (
        "5.0% of users held out of later" in AuditEntry.objects.get(action="holdout.start").detail
    )
    with pytest.raises(HoldoutStateError):
        holdout_start(holdout=holdout, by=pm)
    other = Holdout.objects.create(key="q4", name="Q4")
    started = ExperimentFactory(key="started", status=Experiment.Status.RUNNING)
    other.experiments.set([started])
    with pytest.raises(HoldoutStateError, match="started"):
        holdout_start(holdout=other, by=pm)
    holdout.percentage = 0.2
    with pytest.raises(ValidationError) as exc:
        holdout.full_clean()
    assert "percentage" in exc.value.message_dict


def test_assign_api_reports_and_logs_the_holdout_group(machine_client, running, analytics_store):
    from analytics.events.services import events_flush

    experiment = running(key="covered")
    holdout = _holdout(experiment, percentage=0.5)
    seen = set()
    for i in range(40):
        body = machine_client.post(
            "/api/experiments/assign/", {"user_id": f"a{i}"}, format="json"
        ).json()
        group = _group(holdout, f"a{i}")
        assert body["holdouts"] == ({"h1": group} if group else {})
        assert ("covered" in body["assignments"]) is (group != HOLDOUT_CONTROL)
        seen.add(group)
    assert seen == {HOLDOUT_CONTROL, HOLDOUT_TREATMENT}
    events_flush()
    rows = analytics_store.query(
        "SELECT experiment_id AS e, experiment_variant AS v, count() AS n FROM events "
        "WHERE event = 'experiment_assignment' GROUP BY e, v ORDER BY e, v"
    )
    logged = {(r["e"], r["v"]): int(r["n"]) for r in rows}
    assert (
        logged[("$holdout:h1", HOLDOUT_CONTROL)] + logged[("$holdout:h1", HOLDOUT_TREATMENT)] == 40
    )
    assert ("covered", "control") in logged


def _generated(holdout: Holdout, covered: Experiment, *, users=4000, seed=3) -> pd.DataFrame:
    """Holdout exposures, covered-experiment exposures for the general population and a
    conversion per user (8% held out, 10% general population), written to the store; the
    per-user frame pandas computes the readout from."""
    rng = np.random.default_rng(seed)
    start = holdout.started_at
    rows, frame = [], []
    for i in range(users):
        user = f"g{i}"
        group = HOLDOUT_CONTROL if i % 2 == 0 else HOLDOUT_TREATMENT
        at = start + dt.timedelta(minutes=10 * i)
        rows.append(exposure_row(holdout.tracking_key, user, group, at))
        rows.append(exposure_row(holdout.tracking_key, user, group, at + dt.timedelta(hours=1)))
        if group == HOLDOUT_TREATMENT:
            rows.append(exposure_row(covered.key, user, rng.choice(["control", "treatment"]), at))
        rate = 0.08 if group == HOLDOUT_CONTROL else 0.10
        converted = bool(rng.random() < rate)
        if converted:
            rows.append(event_row(Event.PROJECT_CREATED, user, at + dt.timedelta(days=2), {}))
        # an event after the 7-day window does not count
        rows.append(event_row(Event.PROJECT_CREATED, user, at + dt.timedelta(days=9), {}))
        frame.append({"user": user, "group": group, "day": at.date(), "value": float(converted)})
    rows.append(exposure_row(covered.key, "g0", "treatment", start))  # one leaked held user
    rows_insert(table="events", rows=rows)
    return pd.DataFrame(frame)


@pytest.mark.parametrize("engine", ["frequentist", "bayesian"])
def test_readout_equals_an_independent_computation(analytics_store, running, engine):
    metric = MetricFactory(key="created", event=Event.PROJECT_CREATED, cuped=False)
    covered = running(key="covered-x", primary_metric=metric)
    holdout = _holdout(covered, percentage=0.05, engine=engine, sequential_testing=False)
    frame = _generated(holdout, covered)
    result = holdout_results(holdout)
    counts = frame.groupby("group")["value"].agg(["count", "sum"])
    assert result["srm"]["users"] == {g: int(counts.loc[g, "count"]) for g in counts.index}
    assert result["days_running"] == pytest.approx(30, abs=0.01)
    (m,) = result["metrics"]
    assert m["role"] == "primary" and [v["key"] for v in m["variants"]] == [
        HOLDOUT_CONTROL,
        HOLDOUT_TREATMENT,
    ]
    for row in m["variants"]:
        assert row["raw"] == {
            "users": int(counts.loc[row["key"], "count"]),
            "conversions": int(counts.loc[row["key"], "sum"]),
        }
    nc, xc = counts.loc[HOLDOUT_CONTROL]
    nt, xt = counts.loc[HOLDOUT_TREATMENT]
    pc, pt = xc / nc, xt / nt
    lift = (pt - pc) / pc
    var = pt * (1 - pt) / (pc**2 * nt) + pc * (1 - pc) * pt**2 / (pc**4 * nc)
    comparison = m["variants"][1]["comparison"]
    if engine == "frequentist":
        vc, vt = pc * (1 - pc), pt * (1 - pt)
        dof = (vt / nt + vc / nc) ** 2 / (vt**2 / (nt**2 * (nt - 1)) + vc**2 / (nc**2 * (nc - 1)))
        half = sps.t.ppf(0.975, dof) * math.sqrt(var)
        assert comparison["lift"] == pytest.approx(lift, abs=1e-9)
        assert comparison["ci"] == pytest.approx([lift - half, lift + half], abs=1e-9)
        p = 2 * sps.t.sf(abs(lift) / math.sqrt(var), dof)
        assert comparison["p_value"] == pytest.approx(p, abs=1e-9)
    else:
        precision = 1 / var + 1 / 0.3**2
        mean = (lift / var) / precision
        assert comparison["lift"] == pytest.approx(mean, abs=1e-9)
        assert comparison["chance_to_win"] == pytest.approx(
            sps.norm.cdf(mean * math.sqrt(precision)), abs=1e-9
        )
        assert "p_value" not in comparison
    assert result["leaked_users"] == 1
    gen = [r for r in result["crossing"] if r["grp"] == HOLDOUT_TREATMENT]
    assert sum(r["users"] for r in gen) == int(nt)
    assert "the general population vs the holdout" in result["verdict"]


def test_readout_of_a_holdout_without_exposures_says_what_to_do(analytics_store, running):
    holdout = _holdout(running(key="quiet"))
    result = holdout_results(holdout)
    assert result["srm"]["users"] == {HOLDOUT_CONTROL: 0, HOLDOUT_TREATMENT: 0}
    assert result["verdict"].startswith("No holdout exposures yet")


@pytest.mark.parametrize("engine", ["frequentist", "bayesian"])
def test_api_results_are_exactly_what_the_schema_says(
    api_client_for, pm, running, analytics_store, engine
):
    from experiments.tests.test_api import _results_validator

    metric = MetricFactory(key="created", event=Event.PROJECT_CREATED)
    revenue = MetricFactory(key="rev", kind="mean", event=Event.PAYMENT, value_property="amount")
    covered = running(key="api-x", primary_metric=metric)
    holdout = _holdout(covered, engine=engine)
    holdout.metrics.set([metric, revenue])
    _generated(holdout, covered, users=600)
    client = api_client_for(pm)
    body = client.get("/api/holdouts/h1/results/").json()
    _results_validator(client, "/api/holdouts/{key}/results/").validate(body)
    assert body["holdout"] == "h1" and body["tracking_key"] == "$holdout:h1"
    assert [m["role"] for m in body["metrics"]] == ["primary", "secondary"]
    assert body["experiments"] == [
        {"key": "api-x", "name": "Api-X", "status": "running", "winner": None}
    ]
    assert client.get("/api/holdouts/nope/results/").status_code == 404
    (listed,) = client.get("/api/holdouts/").json()
    assert listed["experiments"] == ["api-x"] and listed["seed"] == holdout.seed


def test_page_shows_readout_covered_experiments_and_leaks(pm, running, analytics_store):
    from experiments.tests.test_pages import _login

    metric = MetricFactory(key="created", event=Event.PROJECT_CREATED)
    covered = running(key="page-x", primary_metric=metric)
    holdout = _holdout(covered, percentage=0.05)
    frame = _generated(holdout, covered, users=1000)
    page = _login(pm).get("/experiments/holdouts/h1/")
    body = page.content.decode()
    assert page.status_code == 200
    assert page.context["held_users"] == (frame["group"] == HOLDOUT_CONTROL).sum()
    assert "General population" in body and "Holdout" in body
    assert "1 held-out users were exposed to a covered experiment" in body
    assert "fig-exposures" in body and "fig-lift" in body
    assert "/experiments/page-x/" in body
    listing = _login(pm).get("/experiments/").content.decode()
    assert "/experiments/holdouts/h1/" in listing


def test_page_empty_states_say_what_to_do(pm, running, analytics_store):
    from experiments.tests.test_pages import _login

    client = _login(pm)
    assert "No holdouts." in client.get("/experiments/").content.decode()
    draft = Holdout.objects.create(key="d1", name="Draft one")
    body = client.get("/experiments/holdouts/d1/").content.decode()
    assert "Not started" in body and f"/admin/experiments/holdout/{draft.pk}/change/" in body
    _holdout(key="bare")
    body = client.get("/experiments/holdouts/bare/").content.decode()
    assert "This holdout covers no experiment" in body and "No holdout exposures yet" in body
    assert client.get("/experiments/holdouts/nope/").status_code == 404


def test_admin_starts_ends_and_refuses_started_experiments(pm, running):
    from experiments.tests.test_pages import _login

    client = _login(pm)  # the product role manages holdouts as it does experiments
    draft = ExperimentFactory(key="d-exp")
    holdout = Holdout.objects.create(key="adm", name="Adm")
    holdout.experiments.set([draft])
    url = "/admin/experiments/holdout/"
    response = client.post(
        url, {"action": "start_holdouts", "_selected_action": [holdout.pk]}, follow=True
    )
    assert response.status_code == 200
    holdout.refresh_from_db()
    assert holdout.status == Holdout.Status.RUNNING
    started = running(key="live-exp")
    form = {
        "key": "adm",
        "name": "Adm",
        "description": "",
        "percentage": "0.05",
        "hash_seed": "",
        "experiments": [draft.pk, started.pk],
        "ends_at_0": "",
        "ends_at_1": "",
        "metrics": [],
        "engine": "frequentist",
        "alpha": "0.05",
        "sequential_testing": "on",
    }
    response = client.post(f"{url}{holdout.pk}/change/", form)
    assert response.status_code == 200  # the form again, with the error
    assert "users already in them would be pulled out mid-test" in response.content.decode()
    assert set(holdout.experiments.values_list("key", flat=True)) == {"d-exp"}
    client.post(url, {"action": "end_holdouts", "_selected_action": [holdout.pk]}, follow=True)
    holdout.refresh_from_db()
    assert holdout.status == Holdout.Status.ENDED and holdout.ended_at is not None
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"holdout.start", "holdout.end"} <= actions
