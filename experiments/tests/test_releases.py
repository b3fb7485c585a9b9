"""Releases on experiment readouts: rollouts as chart markers, and the warning when a service
the experiment depends on was rolled out while it ran (page, API, schema, admin)."""

import datetime as dt

import pytest
from django.utils import timezone

from deployments.models import RolloutStatus
from deployments.tests.factories import ServiceFactory
from deployments.tests.test_releases import rollout
from experiments.releases import experiment_release_warning
from experiments.tests.test_api import _results_validator
from experiments.tests.test_pages import _login, _with_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def releases():
    now = timezone.now()
    renderer = ServiceFactory(name="video-renderer")
    parser = ServiceFactory(name="book-parser")
    day = dt.timedelta(days=1)
    rollout(renderer, "v8", RolloutStatus.PROMOTED, now - 3 * day, now - 3 * day + 4 * 60 * SEC)
    rollout(
        renderer, "v9-fault", RolloutStatus.ROLLED_BACK, now - 2 * day, now - 2 * day + 60 * SEC
    )
    rollout(parser, "v2", RolloutStatus.PROMOTED, now - 2 * day, now - 2 * day + 60 * SEC)
    rollout(renderer, "v7", RolloutStatus.PROMOTED, now - 30 * day, now - 30 * day + 60 * SEC)
    return now


SEC = dt.timedelta(seconds=1)


def test_warning_names_only_rollouts_of_depended_services_while_it_ran(running, releases):
    experiment = running(key="picker", days_ago=6, depends_on_services=["video-renderer"])
    warning = experiment_release_warning(experiment=experiment)
    assert [(r["service"], r["image_tag"], r["kind"]) for r in warning["rollouts"]] == [
        ("video-renderer", "v8", "start"),
        ("video-renderer", "v8", "promoted"),
        ("video-renderer", "v9-fault", "start"),
        ("video-renderer", "v9-fault", "rollback"),
    ]
    assert warning["message"].startswith("video-renderer was rolled out while this experiment")
    assert "4 rollout events" in warning["message"]
    # not depending on anything, or ended before the releases, or not started: no warning
    assert experiment_release_warning(experiment=running(key="free", days_ago=6)) is None
    ended = running(key="ended", days_ago=20, depends_on_services=["video-renderer"])
    ended.ended_at = releases - dt.timedelta(days=10)
    assert experiment_release_warning(experiment=ended) is None
    late = running(key="late", days_ago=1, depends_on_services=["video-renderer", "book-parser"])
    assert experiment_release_warning(experiment=late) is None


def test_results_api_carries_the_warning_as_the_schema_says(
    api_client_for, pm, running, releases, analytics_store
):
    experiment = running(key="picker", days_ago=6, depends_on_services=["video-renderer"])
    _with_data(experiment, users=400)
    running(key="quiet", days_ago=6)
    client = api_client_for(pm)
    validator = _results_validator(client)
    body = client.get("/api/experiments/picker/results/").json()
    validator.validate(body)
    assert len(body["release_warning"]["rollouts"]) == 4
    assert body["release_warning"]["rollouts"][1]["label"] == "video-renderer:v8 promoted"
    quiet = client.get("/api/experiments/quiet/results/").json()
    validator.validate(quiet)
    assert quiet["release_warning"] is None


def test_page_warns_and_draws_every_rollout_on_the_time_series(
    pm, running, releases, analytics_store
):
    experiment = running(key="picker", days_ago=6, depends_on_services=["video-renderer"])
    _with_data(experiment, users=400)
    page = _login(pm).get("/experiments/picker/")
    body = page.content.decode()
    assert "Releases during this experiment." in body and "video-renderer:v9-fault" in body
    for name in ("exposures", "rate"):
        layout = page.context["figures"][name]["layout"]
        labels = [a["text"] for a in layout["annotations"] if "started" in a["text"]]
        # every service's rollouts are markers; only depended ones warn
        assert sorted(labels) == [
            "book-parser:v2 started",
            "video-renderer:v8 started",
            "video-renderer:v9-fault started",
        ]
    lift = page.context["figures"]["lift"]["layout"]  # not a time series: no markers
    assert not [a for a in lift.get("annotations", []) if "started" in a.get("text", "")]


def test_admin_offers_the_services_and_saves_the_choice(admin_user, releases):
    from experiments.tests.factories import ExperimentFactory

    experiment = ExperimentFactory(key="adm")
    client = _login(admin_user)
    page = client.get(f"/admin/experiments/experiment/{experiment.pk}/change/")
    body = page.content.decode()
    assert 'name="depends_on_services" value="video-renderer"' in body
    assert 'name="depends_on_services" value="book-parser"' in body
    form = page.context["adminform"].form
    assert form.fields["depends_on_services"].choices == [
        ("book-parser", "book-parser"),
        ("video-renderer", "video-renderer"),
    ]
    experiment.depends_on_services = ["book-parser"]
    experiment.save()
    again = client.get(f"/admin/experiments/experiment/{experiment.pk}/change/")
    assert again.context["adminform"].form.initial["depends_on_services"] == ["book-parser"]


def test_readout_warning_in_a_browser(
    page, live_asgi, login, pm, running, releases, analytics_store, artifact
):
    experiment = running(
        key="picker", days_ago=6, name="Video style picker", depends_on_services=["video-renderer"]
    )
    _with_data(experiment, users=1500)
    login(page, pm)
    page.goto(f"{live_asgi}/experiments/picker/")
    page.wait_for_selector("[data-figure='fig-exposures'] .main-svg")
    assert "video-renderer was rolled out" in page.inner_text(".release-warning")
    labels = page.locator("[data-figure='fig-exposures'] .annotation-text").evaluate_all(
        "nodes => nodes.map(n => n.textContent)"
    )
    assert "video-renderer:v8 promoted" in labels
    page.screenshot(path=artifact("experiments-release-warning.png"), full_page=True)
