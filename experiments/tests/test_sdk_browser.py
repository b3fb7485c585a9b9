"""The real JavaScript SDKs (`@growthbook/growthbook`, `posthog-js` from npm, pinned in
testing/sdk-js) in headless Chromium, on a page served from its own origin like an app's."""

import json
import random
import time
from pathlib import Path

import pytest

from analytics.events.services import events_flush
from experiments.assignment import assignments_for
from experiments.tests.test_sdk import random_attributes, running_mix

pytestmark = [pytest.mark.browser]
SDK_JS = Path(__file__).resolve().parents[2] / "testing" / "sdk-js"


@pytest.fixture
def app_page(page, live_asgi, publishable_key):
    """The test page with both SDKs started against the live console."""
    if not (SDK_JS / "node_modules" / "posthog-js").exists():
        pytest.skip("testing/sdk-js is not installed (.ci/run runs npm ci there)")
    from testing.servers import static_directory_served

    with static_directory_served(SDK_JS) as origin:
        page.goto(f"{origin}/index.html")
        page.evaluate(
            "([host, key]) => window.sdkStart(host, key)", [live_asgi, publishable_key[1]]
        )
        yield page


def _stored(analytics_store, where: str) -> list[dict]:
    events_flush()
    return analytics_store.query(
        f"SELECT toString(uuid) AS uuid, event, user_id, properties FROM events FINAL "
        f"WHERE {where} ORDER BY timestamp"
    )


def _wait_for(analytics_store, where: str, count: int, seconds: float = 20) -> list[dict]:
    deadline = time.monotonic() + seconds
    rows = _stored(analytics_store, where)
    while len(rows) < count and time.monotonic() < deadline:
        time.sleep(0.5)
        rows = _stored(analytics_store, where)
    return rows


@pytest.mark.django_db(transaction=True)
def test_growthbook_js_evaluates_like_the_server(app_page, live_asgi, publishable_key, running):
    experiments = running_mix(running)
    keys = [e.key for e in experiments]
    rng = random.Random(7)
    users = [
        {
            "id": rng.choice([f"user-{i}", str(50_000 + i), f"ü-{i}-名"]),
            "attributes": random_attributes(rng),
        }
        for i in range(2000)
    ]
    local = app_page.evaluate(
        "([host, key, users, keys]) => window.sdkEvaluate(host, key, users, keys, false)",
        [live_asgi, publishable_key[1], users, keys],
    )
    for user, assigned in zip(users, local, strict=True):
        server, _ = assignments_for(user["id"], user["attributes"])
        assert assigned == server, user


@pytest.mark.django_db(transaction=True)
def test_growthbook_js_decrypts_an_encrypted_payload(app_page, live_asgi, publishable_key, running):
    from core.services import api_key_sdk_encryption

    key = api_key_sdk_encryption(key=publishable_key[0], enabled=True, by=None)
    experiments = running_mix(running)
    keys = [e.key for e in experiments]
    rng = random.Random(11)
    users = [{"id": f"sealed-{i}", "attributes": random_attributes(rng)} for i in range(300)]
    local = app_page.evaluate(
        "([host, key, users, keys, secret]) => window.sdkEvaluate(host, key, users, keys, false,"
        " secret)",
        [live_asgi, publishable_key[1], users, keys, key.sdk_decryption_key],
    )
    assert any(local)  # the payload was decrypted: users are in experiments
    for user, assigned in zip(users, local, strict=True):
        server, _ = assignments_for(user["id"], user["attributes"])
        assert assigned == server, user


@pytest.mark.django_db(transaction=True)
def test_posthog_js_offline_queue_arrives_once_and_sdk_exposures_count(
    app_page, live_asgi, publishable_key, running, analytics_store
):
    from analytics.events.buffer import buffer_clear

    buffer_clear()
    running(key="cta", variants=[("control", 0.5), ("big", 0.5)])
    app_page.evaluate("() => posthog.identify('reader-1')")
    exposure = app_page.evaluate(
        "([host, key]) => window.sdkEvaluate(host, key, [{id: 'reader-1', attributes: {}}], "
        "['cta'], true)",
        [live_asgi, publishable_key[1]],
    )
    app_page.evaluate("() => posthog.capture('online_before', {n: 0})")
    rows = _wait_for(analytics_store, "event IN ('experiment_assignment', 'online_before')", 2)
    assert {r["event"] for r in rows} == {"experiment_assignment", "online_before"}
    [assignment] = [r for r in rows if r["event"] == "experiment_assignment"]
    assert assignment["user_id"] == "reader-1"
    server, _ = assignments_for("reader-1", {})
    assert exposure == [server]
    properties = json.loads(assignment["properties"])
    assert (properties["experiment_id"], properties["variant"]) == ("cta", server["cta"])

    app_page.context.set_offline(True)
    for n in range(12):
        app_page.evaluate("(n) => posthog.capture('offline_read', {n})", n)
    time.sleep(4)  # batches are tried and fail while offline
    assert _stored(analytics_store, "event = 'offline_read'") == []
    app_page.context.set_offline(False)
    app_page.evaluate("() => window.dispatchEvent(new Event('online'))")
    rows = _wait_for(analytics_store, "event = 'offline_read'", 12, seconds=40)
    time.sleep(2)  # anything sent twice would have arrived by now
    rows = _stored(analytics_store, "event = 'offline_read'")
    assert sorted(json.loads(r["properties"])["n"] for r in rows) == list(range(12))
    assert len({r["uuid"] for r in rows}) == 12
    assert {r["user_id"] for r in rows} == {"reader-1"}


@pytest.mark.django_db(transaction=True)
def test_growthbook_js_honours_holdouts_like_the_server(
    app_page, live_asgi, publishable_key, running
):
    from experiments.models import HOLDOUT_CONTROL
    from experiments.tests.test_holdouts import _group, _holdout

    experiments = running_mix(running)
    covered = [e for e in experiments if e.key in ("checkout-cta", "tier-banner", "ns-right")]
    holdout = _holdout(*covered, percentage=0.2)
    keys = [e.key for e in experiments]
    rng = random.Random(13)
    users = [{"id": f"held-{i}", "attributes": random_attributes(rng)} for i in range(1500)]
    local = app_page.evaluate(
        "([host, key, users, keys]) => window.sdkEvaluate(host, key, users, keys, false)",
        [live_asgi, publishable_key[1], users, keys],
    )
    held = 0
    for user, assigned in zip(users, local, strict=True):
        server, _ = assignments_for(user["id"], user["attributes"])
        assert assigned == server, user
        if _group(holdout, user["id"]) == HOLDOUT_CONTROL:
            held += 1
            assert not set(assigned) & {e.key for e in covered}
    assert 200 < held < 400  # about 20% of 1,500 held out


@pytest.mark.django_db(transaction=True)
def test_posthog_js_identify_gives_the_anonymous_events_to_the_user(
    app_page, publishable_key, analytics_store
):
    """posthog-js before login captures under its anonymous id; identify() sends `$identify`
    with `$anon_distinct_id`, and the events captured before it become the user's."""
    from analytics.events.buffer import buffer_clear

    buffer_clear()
    anon = app_page.evaluate("() => posthog.get_distinct_id()")
    for n in range(3):
        app_page.evaluate("(n) => posthog.capture('browsed_anonymously', {n})", n)
    before = _wait_for(analytics_store, "event = 'browsed_anonymously'", 3)
    assert {r["user_id"] for r in before} == {anon}
    app_page.evaluate("() => posthog.identify('reader-2', {tier: 'pro', country: 'PT'})")
    app_page.evaluate("() => posthog.capture('signed_in_read', {n: 9})")
    _wait_for(analytics_store, "event IN ('$identify', 'signed_in_read')", 2)
    rows = _stored(analytics_store, "event IN ('browsed_anonymously', 'signed_in_read')")
    assert len(rows) == 4 and {r["user_id"] for r in rows} == {"reader-2"}
    [person] = analytics_store.query(
        "SELECT argMax(tier, updated_at) AS tier, argMax(country, updated_at) AS country "
        "FROM users WHERE user_id = 'reader-2'"
    )
    assert person == {"tier": "pro", "country": "PT"}
