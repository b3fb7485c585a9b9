"""The experiments pages: list, results (verdict, SRM banner, power progress, charts)."""

import numpy as np
import pytest
from django.test import Client

from analytics.catalog import Event
from analytics.store.bulk import rows_insert
from core.tests.factories import PASSWORD
from experiments.simulation import Outcome, new_users, simulated_events


def _login(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


COUNTRIES = ["US", "DE", "FR", "GB", "IN", "BR", "CA", "JP", "ES", "IT", "NL", "SE", "PL"]


def _with_data(experiment, *, lost=None, users=3000):
    rng = np.random.default_rng(1)
    audience = new_users(
        users=users, start=experiment.started_at, days=6, rng=rng, prefix=experiment.key
    )
    enrichment = {
        user: {
            "geo_country": COUNTRIES[min(int(rng.exponential(3)), len(COUNTRIES) - 1)],
            "device_type": "mobile" if rng.random() < 0.6 else "desktop",
        }
        for user, _ in audience
    }
    rows = simulated_events(
        key=experiment.key,
        seed=experiment.seed,
        variant_keys=["control", "treatment"],
        weights=[0.5, 0.5],
        audience=audience,
        outcomes=[Outcome(Event.PROJECT_CREATED, {"control": 0.1, "treatment": 0.16})],
        lost_exposures=lost,
        rng=rng,
        exposure_properties=enrichment,
    )
    rows_insert(table="events", rows=rows)


@pytest.mark.django_db
def test_list_and_empty_state(pm, running):
    client = _login(pm)
    empty = client.get("/experiments/")
    assert "No experiments yet" in empty.content.decode()
    running(key="alpha", name="Alpha test")
    page = client.get("/experiments/").content.decode()
    assert "Alpha test" in page and "/experiments/alpha/" in page


@pytest.mark.django_db
def test_results_page_shows_verdict_progress_and_srm(pm, running, analytics_store):
    experiment = running(key="srm-one", days_ago=7)
    experiment.power_analysis = {"required_users_per_variant": 4000}
    experiment.save()
    _with_data(experiment, lost={"treatment": 0.2})
    page = _login(pm).get("/experiments/srm-one/")
    body = page.content.decode()
    assert page.status_code == 200
    assert "Sample ratio mismatch" in body
    result = page.context["result"]
    assert page.context["progress"] == round(100 * result["users_per_variant_so_far"] / 4000)
    assert "fig-exposures" in body and "fig-lift" in body


@pytest.mark.django_db
def test_results_page_split_by_a_dimension(pm, running, analytics_store):
    experiment = running(key="split-one", days_ago=7, dimensions=["device_type"])
    experiment.preregistered_dimensions = ["device_type"]
    experiment.save()
    _with_data(experiment)
    client = _login(pm)
    plain = client.get("/experiments/split-one/").content.decode()
    assert "Choose a dimension" in plain and "pre-registered: device_type" in plain
    page = client.get("/experiments/split-one/", {"dimension": "country"})
    body = page.content.decode()
    assert "Chosen after looking" in body and "Benjamini-Hochberg" in body
    split = page.context["split"]
    assert [v["label"] for v in split["values"]][-1] == "other values"
    assert "<td>US</td>" in body
    registered = client.get("/experiments/split-one/", {"dimension": "device_type"})
    assert "Chosen after looking" not in registered.content.decode()
    assert "Pre-registered" in registered.content.decode()
    by_property = client.get("/experiments/split-one/", {"property": "geo_country"})
    assert by_property.context["split"]["name"] == "exposure.geo_country"
    bad = client.get("/experiments/split-one/", {"dimension": "shoe_size"})
    assert bad.status_code == 200 and "unknown dimension" in bad.content.decode()


@pytest.mark.django_db
def test_draft_page_explains_how_to_start(pm):
    from experiments.tests.factories import ExperimentFactory

    ExperimentFactory(key="draft-x")
    body = _login(pm).get("/experiments/draft-x/").content.decode()
    assert "Not started" in body
    assert _login(pm).get("/experiments/unknown/").status_code == 404


def test_results_page_in_a_browser(page, live_asgi, login, pm, running, analytics_store, artifact):
    experiment = running(key="browser-one", days_ago=7, name="Browser test")
    _with_data(experiment)
    login(page, pm)
    page.goto(f"{live_asgi}/experiments/browser-one/")
    page.wait_for_selector("[data-figure='fig-lift'] .main-svg")
    verdict = page.inner_text("#verdict")
    assert "treatment increases" in verdict and "95% confidence interval" in verdict
    assert "frequentist engine" in page.inner_text("#engine").lower()
    headers = page.locator(".metric-table th").all_inner_texts()
    assert "p-value" in [h.lower() for h in headers]
    assert not {"chance to win", "risk"} & {h.lower() for h in headers}
    assert page.locator(".main-svg").count() >= 3
    page.screenshot(path=artifact("experiments-results.png"), full_page=True)
    page.select_option("select[name=dimension]", "country")
    page.click(".dimension-picker button[type=submit]")
    page.wait_for_selector(".dimension-table")
    assert "Chosen after looking" in page.inner_text(".after-looking")
    assert page.locator(".dimension-table tbody tr").count() >= 5
    page.locator("#dimensions").screenshot(path=artifact("experiments-results-by-country.png"))
    page.screenshot(path=artifact("experiments-results-dimension.png"), full_page=True)


@pytest.mark.django_db
def test_bayesian_page_shows_cuped_and_capping_and_no_p_values(pm, running, analytics_store):
    from experiments.models import Metric
    from experiments.tests.factories import MetricFactory
    from experiments.tests.test_results import _cuped_rows

    revenue = MetricFactory(
        key="rev-page",
        name="Revenue",
        kind=Metric.Kind.MEAN,
        event=Event.PAYMENT,
        value_property="amount",
        capping="percentile",
        cap_value=0.95,
    )
    experiment = running(key="bayes-page", days_ago=9, engine="bayesian", primary_metric=revenue)
    rng = np.random.default_rng(5)
    rows_insert(table="events", rows=_cuped_rows(experiment.key, experiment.started_at, rng))
    page = _login(pm).get("/experiments/bayes-page/")
    body = page.content.decode()
    metric = page.context["result"]["metrics"][0]
    reduction = f"{metric['cuped']['variance_reduction'] * 100:.1f}%"
    assert f'variance reduced by <strong class="variance-reduction">{reduction}</strong>' in body
    assert "capped at the 95% percentile" in body
    assert "Bayesian engine" in body and "<th>chance to win</th>" in body
    assert "<th>p-value</th>" not in body and "Holm" not in body
