"""Experiment admin as a product manager: set-up with variant inlines, validation, the start
action with its power analysis, and the frozen fields of a running experiment."""

import pytest
from django.test import Client

from core.tests.factories import PASSWORD
from experiments.models import Experiment
from experiments.tests.factories import ExperimentFactory, MetricFactory

pytestmark = pytest.mark.django_db
ADD = "/admin/experiments/experiment/add/"
CHANGELIST = "/admin/experiments/experiment/"


@pytest.fixture
def pm_browser(pm):
    client = Client()
    assert client.login(username=pm.username, password=PASSWORD)
    return client


def _form(metric, variants, **extra):
    data = {
        "key": "checkout-copy",
        "name": "Checkout copy",
        "hypothesis": "",
        "coverage": "1.0",
        "hash_seed": "",
        "namespace": "",
        "namespace_start": "0",
        "namespace_end": "1",
        "conditions": "{}",
        "primary_metric": str(metric.pk),
        "minimum_detectable_effect": "0.05",
        "alpha": "0.05",
        "power": "0.8",
        "minimum_runtime_days": "7",
        "sequential_testing": "on",
        "engine": "frequentist",
        "prior_mean": "0",
        "prior_stddev": "0.3",
        "proper_prior": "on",
        "risk_threshold": "0.0025",
        "variants-TOTAL_FORMS": str(len(variants)),
        "variants-INITIAL_FORMS": "0",
        "variants-MIN_NUM_FORMS": "0",
        "variants-MAX_NUM_FORMS": "1000",
    }
    for i, (key, weight, control) in enumerate(variants):
        data[f"variants-{i}-key"] = key
        data[f"variants-{i}-name"] = key.title()
        data[f"variants-{i}-weight"] = str(weight)
        if control:
            data[f"variants-{i}-is_control"] = "on"
    data.update(extra)
    return data


def test_product_role_creates_an_experiment_with_variants(pm_browser):
    metric = MetricFactory()
    response = pm_browser.post(ADD, _form(metric, [("control", 50, True), ("b", 50, False)]))
    assert response.status_code == 302, response.content.decode()[:2000]
    experiment = Experiment.objects.get(key="checkout-copy")
    assert experiment.status == "draft"
    assert [(v.key, v.weight, v.is_control) for v in experiment.variants.all()] == [
        ("control", 50.0, True),
        ("b", 50.0, False),
    ]


@pytest.mark.parametrize(
    ("variants", "extra", "message"),
    [
        ([("control", 0.5, True), ("b", 0.4, False)], {}, "sum to 1"),
        ([("control", 0.5, True), ("b", 0.5, True)], {}, "exactly one variant must be the control"),
        ([("control", 1.0, True)], {}, "at least"),
        (
            [("control", 0.5, True), ("b", 0.5, False)],
            {"conditions": '{"country": {"$within": 1}}'},
            "unknown operator",
        ),
        (
            [("control", 0.5, True), ("b", 0.5, False)],
            {"coverage": "1.5"},
            "less than or equal to 1",
        ),
    ],
)
def test_invalid_setups_are_refused_with_a_reason(pm_browser, variants, extra, message):
    response = pm_browser.post(ADD, _form(MetricFactory(), variants, **extra))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Experiment.objects.filter(key="checkout-copy").exists()


def test_start_action_shows_the_power_analysis_then_starts(pm_browser, analytics_store):
    experiment = ExperimentFactory()
    action = {"action": "start_experiments", "_selected_action": [str(experiment.pk)]}
    page = pm_browser.post(CHANGELIST, action)
    assert page.status_code == 200
    body = page.content.decode()
    assert "Start experiments" in body and experiment.key in body
    assert "no baseline data" in body  # the store is empty: honest about it
    experiment.refresh_from_db()
    assert experiment.status == "draft"
    done = pm_browser.post(CHANGELIST, {**action, "confirm": "yes"}, follow=True)
    assert done.status_code == 200
    experiment.refresh_from_db()
    assert experiment.status == "running"
    notes = [str(m) for m in done.context["messages"]]
    assert any(n.startswith(f"started {experiment.key}") for n in notes), notes


@pytest.mark.parametrize("sticky", [True, False])
def test_running_experiment_fields_and_variants_are_frozen(pm_browser, running, sticky):
    """Coverage and weights stay editable only where sticky bucketing keeps users in place."""
    experiment = running(sticky_bucketing=sticky)
    page = pm_browser.get(f"/admin/experiments/experiment/{experiment.pk}/change/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    for field in ("key", "hash_seed", "namespace", "sticky_bucketing"):
        assert field not in form.fields
    assert ("coverage" in form.fields) is sticky
    inline = page.context["inline_admin_formsets"][0]
    assert not inline.has_add_permission and not inline.has_delete_permission
    editable = [name for name in inline.formset.forms[0].fields if name not in ("id", "experiment")]
    assert editable == (["weight"] if sticky else [])


def test_stop_action(pm_browser, running):
    experiment = running()
    response = pm_browser.post(
        CHANGELIST, {"action": "stop_experiments", "_selected_action": [str(experiment.pk)]}
    )
    assert response.status_code == 302
    experiment.refresh_from_db()
    assert experiment.status == "stopped" and experiment.ended_by == "priya"


def test_engineer_cannot_manage_experiments(engineer):
    client = Client()
    client.login(username=engineer.username, password=PASSWORD)
    assert client.get(ADD).status_code == 403
