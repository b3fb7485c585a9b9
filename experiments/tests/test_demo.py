"""Demo data: every experiment state is visible, and a second run adds nothing."""

import io

import pytest

from analytics import demo as analytics_demo
from experiments import demo
from experiments.models import HOLDOUT_CONTROL, HOLDOUT_TREATMENT, Experiment, Holdout
from experiments.results import holdout_results

pytestmark = pytest.mark.django_db


def test_demo_shows_every_state_and_is_idempotent(analytics_store, admin_user):
    """On the product demo's users: each experiment exposes users who were active during it and
    adds none of its own."""
    analytics_demo.seed(stdout=io.StringIO())
    users = analytics_store.query("SELECT uniqExact(user_id) AS n FROM events")[0]["n"]
    demo.seed(stdout=io.StringIO())
    assert analytics_store.query("SELECT uniqExact(user_id) AS n FROM events")[0]["n"] == users
    states = {e.key: e for e in Experiment.objects.all()}
    assert states["onboarding-checklist"].status == "running"
    assert states["onboarding-checklist"].last_results["srm"]["users"]["control"] > 1000
    concluded = states["annual-plan-default"]
    assert concluded.status == "concluded" and concluded.winner.key == "annual"
    assert states["video-style-picker"].srm_flagged is True
    holdout = Holdout.objects.get(key="h2-holdout")
    assert holdout.status == "running"
    assert set(holdout.experiments.values_list("key", flat=True)) == {
        "onboarding-checklist",
        "annual-plan-default",
    }
    # started with its first covered experiment, so its users are counted from then
    assert holdout.started_at == concluded.started_at
    readout = holdout_results(holdout)
    users = readout["srm"]["users"]
    assert users[HOLDOUT_CONTROL] > 500 and users[HOLDOUT_TREATMENT] > 500
    assert readout["srm"]["ok"] and readout["leaked_users"] == 0  # held users saw neither
    assert {m["key"] for m in readout["metrics"]} >= {"project-created-7d"}
    count = analytics_store.query("SELECT count() AS n FROM events")[0]["n"]
    demo.seed(stdout=io.StringIO())
    assert analytics_store.query("SELECT count() AS n FROM events")[0]["n"] == count
    assert Experiment.objects.count() == 3
