"""The GrowthBook SDK payload, held to the real Python SDK (`growthbook` from PyPI): local
evaluation answers what `/api/experiments/assign/` answers, user by user."""

import base64
import json
import random

import pytest
from growthbook import GrowthBook

from core.auth import ApiKeyAuthentication
from core.models import AuditEntry
from experiments.assignment import assignments_for
from experiments.models import Experiment
from experiments.tests.factories import ExperimentFactory


@pytest.fixture
def api_key(publishable_key):
    """SDKs carry a publishable key (a secret key is refused outside X-Api-Key)."""
    return publishable_key


COUNTRIES = ["US", "CA", "DE", "FR", "BR", "IN", None]
TIERS = ["free", "pro", "team", None]
VERSIONS = ["1.9.2", "1.10.0", "2.0.0", "2.1.0-beta", "2.1.0", "2.10.1", None]


def running_mix(running) -> list:
    """Running experiments covering every rule field: uneven weights, coverage, a custom seed,
    targeting (with version comparisons that differ from text order), and two namespaces."""
    return [
        running(key="checkout-cta", variants=[("control", 0.5), ("big", 0.3), ("bold", 0.2)]),
        running(key="onboarding", coverage=0.6, hash_seed="onboarding-v2"),
        running(
            key="pricing-page",
            conditions={"country": {"$in": ["US", "CA"]}, "app_version": {"$gte": "1.10.0"}},
            variants=[("control", 50), ("annual-first", 50)],
        ),
        running(
            key="tier-banner",
            conditions={"$or": [{"tier": "pro"}, {"app_version": "2.1.0"}]},
        ),
        running(key="ns-left", namespace="home", namespace_start=0.0, namespace_end=0.5),
        running(
            key="ns-right",
            namespace="home",
            namespace_start=0.5,
            namespace_end=1.0,
            coverage=0.8,
        ),
    ]


@pytest.fixture
def experiments(running):
    return running_mix(running)


def random_attributes(rng: random.Random) -> dict:
    attrs = {
        "country": rng.choice(COUNTRIES),
        "tier": rng.choice(TIERS),
        "app_version": rng.choice(VERSIONS),
    }
    return {k: v for k, v in attrs.items() if v is not None}


def _sdk_assignments(features: dict, user_id: str, attributes: dict) -> dict[str, str]:
    gb = GrowthBook(attributes={"id": user_id, **attributes}, features=features)
    out = {}
    for key in features:
        result = gb.eval_feature(key)
        if result.source == "experiment":
            out[key] = result.value
    gb.destroy()
    return out


@pytest.mark.django_db
def test_local_evaluation_matches_server_assignment_for_thousands_of_users(
    experiments, api_key, client
):
    response = client.get(f"/api/features/{api_key[1]}")
    assert response.status_code == 200
    features = response.json()["features"]
    assert set(features) == {e.key for e in experiments}
    rng = random.Random(21)
    seen: dict[str, set[str]] = {e.key: set() for e in experiments}
    for i in range(3000):
        # ids as apps send them: uuids, numbers, emails, non-ASCII
        user_id = rng.choice([f"user-{i}", str(10_000 + i), f"u{i}@example.com", f"ü-{i}-名"])
        attributes = random_attributes(rng)
        server, _ = assignments_for(user_id, attributes)
        assert _sdk_assignments(features, user_id, attributes) == server, (user_id, attributes)
        for key, variant in server.items():
            seen[key].add(variant)
        assert not {"ns-left", "ns-right"} <= set(server)  # the namespace excludes
    # every variant of every experiment was reached, so the comparison covered each branch
    for experiment in experiments:
        assert seen[experiment.key] == {v.key for v in experiment.variants.all()}


@pytest.mark.django_db
def test_payload_rule_carries_growthbook_fields(experiments, api_key, client):
    features = client.get(f"/api/features/{api_key[1]}").json()["features"]
    rule = features["pricing-page"]["rules"][0]
    assert rule["hashVersion"] == 2
    assert rule["hashAttribute"] == "id"
    assert rule["seed"] == "pricing-page"
    assert rule["variations"] == ["control", "annual-first"]
    assert rule["weights"] == [0.5, 0.5]
    assert rule["meta"] == [
        {"key": "control", "name": "control"},
        {"key": "annual-first", "name": "annual-first"},
    ]
    assert rule["phase"] == "0"
    # version comparison spelled as GrowthBook's explicit operator
    assert rule["condition"] == {
        "country": {"$in": ["US", "CA"]},
        "app_version": {"$vgte": "1.10.0"},
    }
    assert features["ns-right"]["rules"][0]["namespace"] == ["home", 0.5, 1.0]
    assert features["onboarding"]["rules"][0]["seed"] == "onboarding-v2"
    assert features["onboarding"]["rules"][0]["coverage"] == 0.6
    assert features["checkout-cta"]["defaultValue"] is None


@pytest.mark.django_db
def test_concluded_serves_winner_or_control_and_stopped_or_draft_nothing(running, api_key, client):
    won = running(key="won")
    won.status = Experiment.Status.CONCLUDED
    won.winner = won.variants.get(key="treatment")
    won.save()
    no_winner = running(key="no-winner")
    no_winner.status = Experiment.Status.CONCLUDED
    no_winner.save()
    stopped = running(key="stopped")
    stopped.status = Experiment.Status.STOPPED
    stopped.save()
    ExperimentFactory(key="draft")
    features = client.get(f"/api/features/{api_key[1]}").json()["features"]
    assert set(features) == {"won", "no-winner"}
    gb = GrowthBook(attributes={"id": "anyone"}, features=features)
    assert gb.get_feature_value("won", None) == "treatment"
    assert gb.get_feature_value("no-winner", None) == "control"


@pytest.mark.django_db
def test_etag_answers_304_until_the_payload_changes(experiments, api_key, client):
    first = client.get(f"/api/features/{api_key[1]}")
    etag = first["ETag"]
    assert "max-age" in first["Cache-Control"]
    again = client.get(f"/api/features/{api_key[1]}", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    assert again["ETag"] == etag
    experiments[0].status = Experiment.Status.STOPPED
    experiments[0].save()
    changed = client.get(f"/api/features/{api_key[1]}", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert changed["ETag"] != etag
    assert experiments[0].key not in changed.json()["features"]


@pytest.mark.django_db
def test_unknown_or_revoked_key_is_401_with_the_error_body(api_key, client):
    response = client.get("/api/features/not-a-key")
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"
    key, raw = api_key
    key.is_active = False
    key.save()
    assert client.get(f"/api/features/{raw}").status_code == 401


@pytest.mark.django_db(transaction=True)
def test_python_sdk_loads_the_payload_from_a_live_server(live_asgi, running, api_key):
    running(key="live-exp", variants=[("control", 0.5), ("treatment", 0.5)])
    gb = GrowthBook(api_host=live_asgi, client_key=api_key[1], attributes={"id": "user-7"})
    try:
        gb.load_features()
        result = gb.eval_feature("live-exp")
    finally:
        gb.destroy()
    server, _ = assignments_for("user-7", {})
    assert result.source == "experiment"
    assert result.value == server["live-exp"]


@pytest.fixture
def encrypted_key(api_key):
    from core.services import api_key_sdk_encryption

    key, raw = api_key
    return api_key_sdk_encryption(key=key, enabled=True, by=None), raw


@pytest.mark.django_db
def test_encrypted_payload_is_growthbooks_wire_format(experiments, encrypted_key, client):
    from growthbook.growthbook import decrypt

    key, raw = encrypted_key
    plain_features = {e.key for e in experiments}
    response = client.get(f"/api/features/{raw}")
    body = response.json()
    assert body["features"] == {} and "savedGroups" not in body
    iv, sealed = body["encryptedFeatures"].split(".")
    assert len(base64.b64decode(iv)) == 16 and len(base64.b64decode(sealed)) % 16 == 0
    # The GrowthBook SDK's own decryption (AES-CBC, PKCS7) gives back the plain payload.
    features = json.loads(decrypt(body["encryptedFeatures"], key.sdk_decryption_key))
    assert set(features) == plain_features
    key.encrypt_sdk_payload = False
    key.save()
    ApiKeyAuthentication.forget(key.key_hash)
    clear = client.get(f"/api/features/{raw}")
    assert clear.json()["features"] == features
    assert clear["ETag"] != response["ETag"]  # another body, another tag


@pytest.mark.django_db
def test_encrypted_payload_etag_answers_304_until_it_changes(experiments, encrypted_key, client):
    from core.services import api_key_sdk_encryption

    key, raw = encrypted_key
    first = client.get(f"/api/features/{raw}")
    again = client.get(f"/api/features/{raw}", HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304
    assert client.get(f"/api/features/{raw}").json() == first.json()  # same body, same tag
    api_key_sdk_encryption(key=key, enabled=True, new_secret=True, by=None)
    rotated = client.get(f"/api/features/{raw}", HTTP_IF_NONE_MATCH=first["ETag"])
    assert rotated.status_code == 200
    assert rotated.json()["encryptedFeatures"] != first.json()["encryptedFeatures"]
    experiments[0].status = Experiment.Status.STOPPED
    experiments[0].save()
    changed = client.get(f"/api/features/{raw}", HTTP_IF_NONE_MATCH=rotated["ETag"])
    assert changed.status_code == 200


@pytest.mark.django_db(transaction=True)
def test_python_sdk_decrypts_the_payload_from_a_live_server(live_asgi, running, encrypted_key):
    key, raw = encrypted_key
    running(key="sealed-exp", variants=[("control", 0.5), ("treatment", 0.5)])
    for user in ("user-7", "user-8", "user-9"):
        gb = GrowthBook(
            api_host=live_asgi,
            client_key=raw,
            decryption_key=key.sdk_decryption_key,
            attributes={"id": user},
        )
        try:
            gb.load_features()
            result = gb.eval_feature("sealed-exp")
        finally:
            gb.destroy()
        server, _ = assignments_for(user, {})
        assert result.source == "experiment"
        assert result.value == server["sealed-exp"]


@pytest.mark.django_db
def test_admin_turns_encryption_on_and_shows_the_decryption_key(admin_user, api_key, client):
    key, _raw = api_key
    client.force_login(admin_user)
    form = {
        "name": key.name,
        "kind": key.kind,
        "is_active": "on",
        "encrypt_sdk_payload": "on",
    }
    response = client.post(f"/admin/platform_site/apikey/{key.pk}/change/", form, follow=True)
    assert response.status_code == 200
    key.refresh_from_db()
    assert key.encrypt_sdk_payload and len(base64.b64decode(key.sdk_decryption_key)) == 16
    page = client.get(f"/admin/platform_site/apikey/{key.pk}/change/").content.decode()
    assert key.sdk_decryption_key in page
    before = key.sdk_decryption_key
    client.post(
        "/admin/platform_site/apikey/",
        {"action": "new_sdk_decryption_key", "_selected_action": [key.pk]},
    )
    key.refresh_from_db()
    assert key.sdk_decryption_key != before
    actions = list(
        AuditEntry.objects.filter(target_id=str(key.pk)).values_list("action", flat=True)
    )
    assert actions.count("api_key.sdk_encryption") == 2
