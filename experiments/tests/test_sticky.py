"""Sticky bucketing: the server's assignments against the GrowthBook Python SDK with its own
in-memory sticky bucket service, through targeting, coverage and weight changes,
re-randomization and minimum bucket versions; the admin warning; the stored buckets."""

import pytest
from django.test import Client
from growthbook import Experiment as GbExperiment
from growthbook import GrowthBook, InMemoryStickyBucketService

from core.models import AuditEntry
from core.tests.factories import PASSWORD
from experiments.assignment import assignments_for, running_experiments, sticky_buckets
from experiments.models import Experiment, StickyAssignment
from experiments.services import experiment_assignment_change

pytestmark = pytest.mark.django_db
ASSIGN = "/api/experiments/assign/"


def _sdk_variant(experiment: Experiment, service, user_id: str, attributes: dict) -> str | None:
    """The GrowthBook SDK's answer for the experiment as the server holds it now."""
    experiment.refresh_from_db()
    variants = list(experiment.variants.all())
    total = sum(v.weight for v in variants)
    namespace = (
        [experiment.namespace, experiment.namespace_start, experiment.namespace_end]
        if experiment.namespace
        else None
    )
    gb = GrowthBook(
        attributes={"id": user_id, "user_id": user_id, **attributes},
        sticky_bucket_service=service,
        sticky_bucket_identifier_attributes=["id"],
    )
    gb.refresh_sticky_buckets(force=True)
    result = gb.run(
        GbExperiment(
            key=experiment.key,
            variations=[v.key for v in variants],
            weights=[v.weight / total for v in variants],
            coverage=experiment.coverage,
            condition=experiment.conditions or None,
            namespace=namespace,
            hashAttribute="id",
            hashVersion=2,
            seed=experiment.seed,
            meta=[{"key": v.key} for v in variants],
            bucketVersion=experiment.bucket_version,
            minBucketVersion=experiment.min_bucket_version,
            disableStickyBucketing=not experiment.sticky_bucketing,
        )
    )
    return result.value if result.inExperiment else None


def _server_variant(experiment: Experiment, user_id: str, attributes: dict) -> str | None:
    running_experiments.invalidate()
    got, _ = assignments_for(user_id, attributes, [experiment.key])
    return got.get(experiment.key)


def _change(experiment, *, by, weights=None, rerandomize=False, exclude=False, **fields):
    """What the admin form does: save the new settings, then record the change."""
    for name, value in fields.items():
        setattr(experiment, name, value)
    experiment.save()
    if weights:
        for variant in experiment.variants.all():
            variant.weight = weights[variant.key]
            variant.save()
    return experiment_assignment_change(
        experiment=experiment,
        by=by,
        changes=sorted([*fields, *(["weights"] if weights else [])]),
        rerandomize=rerandomize,
        exclude_previous=exclude,
    )


def test_server_matches_the_growthbook_sdk_through_every_kind_of_change(running, admin_user):
    experiment = running(key="pricing-annual", conditions={"tier": "free"}, coverage=0.8)
    service = InMemoryStickyBucketService()
    users = [f"user-{i}" for i in range(120)]
    tiers = {u: "free" if i % 3 else "pro" for i, u in enumerate(users)}
    history: dict[str, list] = {u: [] for u in users}

    def round_(label: str):
        for user in users:
            attrs = {"tier": tiers[user]}
            expected = _sdk_variant(experiment, service, user, attrs)
            got = _server_variant(experiment, user, attrs)
            assert got == expected, (label, user)
            history[user].append(got)

    round_("start")
    in_first = [u for u in users if history[u][0] is not None]
    assert 40 < len(in_first) < 90  # free users (2/3) times 80 % coverage

    for user in users[::2]:
        tiers[user] = "pro"  # upgraded mid-test: stays in the test
    _change(experiment, by=admin_user, weights={"control": 0.1, "treatment": 0.9}, coverage=0.3)
    round_("weights, coverage and targeting moved")
    for user in in_first:
        assert history[user][1] == history[user][0], user
    newcomers = [u for u in users if history[u][0] is None and history[u][1] is not None]
    assert all(history[u][1] in ("control", "treatment") for u in newcomers)

    _change(experiment, by=admin_user, rerandomize=True)
    round_("re-randomized")
    assert experiment.bucket_version == 1 and experiment.min_bucket_version == 0
    eligible = [u for u in users if tiers[u] == "free"]
    moved = sum(history[u][2] != history[u][1] for u in eligible)
    assert moved > 0  # a new seed: users are hashed again

    _change(experiment, by=admin_user, exclude=True, coverage=1.0, conditions={})
    round_("previous buckets excluded")
    assert experiment.min_bucket_version == experiment.bucket_version == 2
    for user in users:
        was_bucketed = any(v is not None for v in history[user][:3])
        assert (history[user][3] is None) is was_bucketed, user


def test_a_user_who_upgrades_mid_test_stays_in_it_only_with_sticky_bucketing(
    machine_client, running
):
    sticky = running(key="pricing-sticky", conditions={"tier": "free"})
    plain = running(key="pricing-plain", conditions={"tier": "free"}, sticky_bucketing=False)
    post = lambda tier: machine_client.post(  # noqa: E731
        ASSIGN, {"user_id": "u-42", "attributes": {"tier": tier}}, format="json"
    ).json()["assignments"]
    first = post("free")
    assert set(first) == {sticky.key, plain.key}
    after = post("pro")
    assert after == {sticky.key: first[sticky.key]}
    assert sticky_buckets("u-42") == {f"{sticky.key}__0": first[sticky.key]}


def test_buckets_are_stored_once_and_outlive_the_process_cache(running):
    experiment = running(key="style-picker")
    got, _ = assignments_for("u1", {}, None)
    running_experiments.invalidate()
    again, _ = assignments_for("u1", {}, None)
    assert got == again
    rows = StickyAssignment.objects.filter(attribute_value="u1")
    assert [(r.experiment_key, r.bucket_version, r.variant_key) for r in rows] == [
        (experiment.key, 0, got[experiment.key])
    ]


def test_a_bucket_stored_elsewhere_first_wins(running):
    """Another process bucketed the user a moment earlier (say before a weight change reached
    this one): the stored variant is the answer, never a second bucket."""
    experiment = running(key="race")
    got, _ = assignments_for("u7", {}, None)
    other = "control" if got[experiment.key] == "treatment" else "treatment"
    StickyAssignment.objects.filter(attribute_value="u7").update(variant_key=other)
    from experiments.assignment import sticky_buckets_save

    assert sticky_buckets_save("u7", {(experiment.key, 0): got[experiment.key]}) == {
        experiment.key: other
    }


def test_change_service_audits_and_refuses_without_sticky_bucketing(running, admin_user):
    from experiments.services import ExperimentStateError

    experiment = running(key="plain", sticky_bucketing=False)
    with pytest.raises(ExperimentStateError, match="no sticky bucketing"):
        experiment_assignment_change(
            experiment=experiment, by=admin_user, changes=["weights"], rerandomize=True
        )
    sticky = running(key="sticky")
    _, message = experiment_assignment_change(experiment=sticky, by=admin_user, changes=["weights"])
    assert "keep their variant" in message
    entry = AuditEntry.objects.get(action="experiment.assignment_change")
    assert entry.detail == message and entry.actor == admin_user


def test_admin_weight_change_warns_and_keeps_users_unless_rerandomized(pm, running):
    experiment = running(key="admin-sticky")
    browser = Client()
    assert browser.login(username=pm.username, password=PASSWORD)
    url = f"/admin/experiments/experiment/{experiment.pk}/change/"
    page = browser.get(url)
    form = page.context["adminform"].form
    assert "coverage" in form.fields and "rerandomize" in form.fields
    assert "key" not in form.fields and "hash_seed" not in form.fields
    data = _admin_form(page)
    variants = list(experiment.variants.all())
    data["variants-0-weight"] = "0.2"
    data["variants-1-weight"] = "0.8"
    done = browser.post(url, data, follow=True)
    notes = [(m.level_tag, str(m)) for m in done.context["messages"]]
    assert any(tag == "warning" and "keep their variant" in text for tag, text in notes), notes
    assert [v.weight for v in experiment.variants.order_by("id")] == [0.2, 0.8]
    assert [v.key for v in experiment.variants.order_by("id")] == [v.key for v in variants]
    experiment.refresh_from_db()
    assert experiment.bucket_version == 0

    data = _admin_form(browser.get(url))
    data["rerandomize"] = "on"
    browser.post(url, data, follow=True)
    experiment.refresh_from_db()
    assert (experiment.bucket_version, experiment.min_bucket_version) == (1, 0)
    assert AuditEntry.objects.filter(action="experiment.rerandomize").count() == 1


def _admin_form(page) -> dict:
    """The change form's current values as a browser would post them back."""
    data = {}
    form = page.context["adminform"].form
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif isinstance(value, list):
            data[name] = [str(v) for v in value]
        elif value is not None:
            data[name] = field.widget.format_value(value) if name == "conditions" else str(value)
    for formset in page.context["inline_admin_formsets"]:
        fs = formset.formset
        management = fs.management_form
        for name in management.fields:
            data[f"{fs.prefix}-{name}"] = str(management[name].value())
        for sub in fs.forms:
            for name in sub.fields:
                value = sub[name].value()
                if isinstance(value, bool):
                    if value:
                        data[sub.add_prefix(name)] = "on"
                elif value is not None:
                    data[sub.add_prefix(name)] = str(value)
    return data


def _payload_variant(features: dict, service, user_id: str, attributes: dict, key: str):
    gb = GrowthBook(
        attributes={"id": user_id, **attributes}, features=features, sticky_bucket_service=service
    )
    gb.refresh_sticky_buckets(force=True)
    result = gb.eval_feature(key)
    gb.destroy()
    return result.value if result.source == "experiment" else None


def test_sdk_payload_carries_bucket_versions_and_sdks_stay_sticky(
    running, publishable_key, admin_user
):
    """The GrowthBook SDK evaluating `/api/features/<client_key>` with its own sticky bucket
    service keeps the users the server keeps through weight and coverage changes, and leaves
    out the ones the server leaves out after re-randomizing with exclusion."""
    from django.test import Client

    experiment = running(key="pricing-annual", conditions={"tier": "free"})
    running(key="plain", sticky_bucketing=False)
    client = Client()
    payload = lambda: client.get(f"/api/features/{publishable_key[1]}").json()["features"]  # noqa: E731
    features = payload()
    assert features["plain"]["rules"][0]["disableStickyBucketing"] is True
    rule = features["pricing-annual"]["rules"][0]
    assert (rule["bucketVersion"], rule["minBucketVersion"], rule["phase"]) == (0, 0, "0")
    service = InMemoryStickyBucketService()
    users = [f"p-{i}" for i in range(150)]

    def both(tier: str) -> dict:
        out = {}
        for user in users:
            sdk = _payload_variant(features, service, user, {"tier": tier}, experiment.key)
            assert sdk == _server_variant(experiment, user, {"tier": tier}), user
            out[user] = sdk
        return out

    first = both("free")
    assert set(first.values()) == {"control", "treatment"}
    _change(experiment, by=admin_user, weights={"control": 0.05, "treatment": 0.95}, coverage=0.2)
    features = payload()
    assert both("free") == first  # re-weighted, coverage cut: nobody moved
    # A GrowthBook SDK checks a feature rule's targeting before its sticky bucket (growthbook
    # core `_eval_feature`), so from the payload an upgraded user leaves; the server keeps them.
    assert _payload_variant(features, service, "p-0", {"tier": "pro"}, experiment.key) is None
    assert _server_variant(experiment, "p-0", {"tier": "pro"}) == first["p-0"]

    _change(experiment, by=admin_user, exclude=True)
    features = payload()
    rule = features["pricing-annual"]["rules"][0]
    assert (rule["bucketVersion"], rule["minBucketVersion"], rule["phase"]) == (1, 1, "1")
    assert set(both("free").values()) == {None}
