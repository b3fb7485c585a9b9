"""Header and cookie routing to the canary: rules, the Istio routes on the Kubernetes API
emulator, the simulated cluster's traffic, the API and the rollout form."""

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deployments.cluster.kubernetes import KubernetesCluster
from deployments.cluster.simulated import SimulatedCluster
from deployments.matching import MatchError, istio_match, rules_from_text, validate_rules
from deployments.models import Rollout, RolloutStatus
from deployments.services import rollout_abort, rollout_start
from deployments.tests.test_kubernetes import NS, FixedMetrics, controller

ISTIO = "networking.istio.io"
QUICK = {"interval_seconds": 0.2, "samples_per_step": 1, "failure_limit": 1}


# Rules ----------------------------------------------------------------------------------------


def test_text_form_reads_every_kind_of_rule():
    rules = rules_from_text(
        "# who sees the canary first\n"
        "X-Canary: insider\n"
        "x-beta ^= yes\n"
        "user-agent ~ .*Android.*\n"
        "cookie canary=always\n"
    )
    assert rules == [
        {"header": "x-canary", "exact": "insider"},
        {"header": "x-beta", "prefix": "yes"},
        {"header": "user-agent", "regex": ".*Android.*"},
        {"cookie": "canary", "value": "always"},
    ]


@pytest.mark.parametrize(
    "text,problem",
    [
        ("just words", "line 1: write `header: value`"),
        ("cookie canary", "line 1: write a cookie rule"),
        ("x_bad: 1", "line 1: header must be lowercase"),
        ("ua ~ (a)\\1", "line 1: backreferences and lookarounds are not RE2"),
        ("ua ~ (?=a)", "line 1: backreferences and lookarounds are not RE2"),
        ("ua ~ [", "line 1: invalid regex"),
        ("ok: 1\nx-a:", "line 2: exact must be 1 to 256 characters"),
    ],
)
def test_text_form_names_the_line_and_problem(text, problem):
    with pytest.raises(MatchError) as err:
        rules_from_text(text)
    assert str(err.value).startswith(problem)


@pytest.mark.parametrize(
    "rules",
    [
        "x",
        [{"header": "x-a"}],
        [{"header": "x-a", "exact": "1", "prefix": "2"}],
        [{"header": "x-a", "equals": "1"}],
        [{"cookie": "c", "value": "v", "extra": 1}],
        [{"header": "x-a", "exact": "a\x00b"}],
        [{"header": "x-a", "exact": 5}],
        [{"header": "x-a", "exact": "1"}] * 11,
    ],
)
def test_malformed_rules_are_refused(rules):
    with pytest.raises(MatchError):
        validate_rules(rules)


# The cookie rule must route exactly the requests whose Cookie header holds name=value, as Envoy
# evaluates it (a full match; Python's `re` and RE2 agree on this regex).
_cookie_names = st.sampled_from(["canary", "session", "theme", "canary2", "xcanary"])
_cookie_values = st.sampled_from(["always", "never", "always1", "a.b", ""])


@settings(max_examples=200, deadline=None)
@given(pairs=st.lists(st.tuples(_cookie_names, _cookie_values), max_size=5), spaces=st.booleans())
def test_cookie_rule_matches_exactly_the_cookie_pair(pairs, spaces):
    header = (";" + (" " if spaces else "")).join(f"{n}={v}" for n, v in pairs)
    (route,) = istio_match([{"cookie": "canary", "value": "always"}])
    pattern = route["headers"]["cookie"]["regex"]
    expected = ("canary", "always") in pairs
    assert (re.fullmatch(pattern, header) is not None) == expected


# Kubernetes (loopback API emulator) -------------------------------------------------------------


def routes(k8s, name="api-gateway"):
    return k8s.get("virtualservices", NS, name, group=ISTIO)["spec"]["http"]


def test_virtual_service_sends_matching_requests_to_canary_then_drops_the_rule(
    k8s, service, engineer, drive
):
    cluster = KubernetesCluster.from_settings()
    seen = []

    def step(rollout):
        controller(k8s)(rollout)
        seen.append(routes(k8s))

    rollout = rollout_start(
        service=service,
        image_tag="v2",
        by=engineer,
        steps=[0, 50, 100],
        analysis=QUICK,
        match=[{"cookie": "canary", "value": "always"}, {"header": "x-canary", "exact": "insider"}],
    )
    rollout = drive(rollout, cluster=cluster, metrics=FixedMetrics(), between=step)
    assert rollout.status == RolloutStatus.PROMOTED
    host = "api-gateway.book2video-test.svc.cluster.local"
    first_with_rules = next(r for r in seen if len(r) == 2)
    match_route, primary = first_with_rules
    assert match_route == {
        "name": "canary-match",
        "match": [
            {"headers": {"cookie": {"regex": r"^(.*?;\s*)?(canary=always)(;.*)?$"}}},
            {"headers": {"x-canary": {"exact": "insider"}}},
        ],
        "route": [{"destination": {"host": host, "subset": "canary"}, "weight": 100}],
    }
    # The weight-0 step: only matching requests reach canary.
    assert [r["weight"] for r in primary["route"]] == [100, 0]
    assert cluster.get_canary_match(service) == []  # promotion removed the rule
    assert [r["name"] for r in routes(k8s)] == ["primary"]
    weights_with_rules = {r[1]["route"][1]["weight"] for r in seen if len(r) == 2}
    assert weights_with_rules <= {0, 50, 100} and {0, 50} <= weights_with_rules
    timeline = " ".join(e.message for e in rollout.events.all())
    assert "canary at 0% traffic + requests where cookie canary=always or x-canary = insider" in (
        timeline
    )


def test_abort_removes_the_match_route(k8s, service, engineer, drive):
    cluster = KubernetesCluster.from_settings()
    rollout = rollout_start(
        service=service,
        image_tag="v2",
        by=engineer,
        steps=[0, 100],
        analysis={**QUICK, "samples_per_step": 50},
        match=[{"header": "x-canary", "exact": "insider"}],
    )
    rollout = drive(
        rollout,
        cluster=cluster,
        metrics=FixedMetrics(),
        between=controller(k8s),
        until=lambda r: r.phase == "analyze",
    )
    assert cluster.get_canary_match(service) == [{"headers": {"x-canary": {"exact": "insider"}}}]
    assert cluster.get_canary_weight(service) == 0
    rollout_abort(rollout=rollout, by=engineer, reason="enough")
    rollout = drive(rollout, cluster=cluster, metrics=FixedMetrics(), between=controller(k8s))
    assert rollout.status == RolloutStatus.ABORTED
    assert cluster.get_canary_match(service) == []
    assert [r["name"] for r in routes(k8s)] == ["primary"]


# The simulated cluster ----------------------------------------------------------------------------


def test_simulated_canary_serves_the_matching_share_at_weight_zero(
    settings, service, engineer, drive
):
    settings.SIM_MATCHED_TRAFFIC_PERCENT = 5.0
    cluster = SimulatedCluster()
    rollout = rollout_start(
        service=service,
        image_tag="v2",
        by=engineer,
        steps=[0, 100],
        analysis={**QUICK, "samples_per_step": 50},
        match=[{"cookie": "canary", "value": "always"}],
    )
    drive(rollout, cluster=cluster, until=lambda r: r.phase == "analyze")
    canary = cluster.sample(service, "canary")
    stable = cluster.sample(service, "stable")
    assert canary is not None and stable is not None
    share = canary["request_rate"] / (canary["request_rate"] + stable["request_rate"])
    assert 0.03 < share < 0.07  # 5 % of requests, each side within its ±7 % noise
    cluster.set_canary_weight(service, 0)
    assert cluster.sample(service, "canary") is None  # rules gone: no canary traffic


# API and form -----------------------------------------------------------------------------------


@pytest.fixture
def eng(engineer, api_client_for):
    return api_client_for(engineer)


def test_api_starts_a_rollout_with_rules_and_shows_them(eng, service):
    rules = [{"cookie": "canary", "value": "always"}, {"header": "x-beta", "prefix": "yes"}]
    r = eng.post(
        "/api/rollouts/",
        {"service": service.name, "image_tag": "v2", "steps": [0, 25, 100], "match": rules},
        format="json",
    )
    assert r.status_code == 201, r.json()
    assert r.json()["match"] == rules
    assert [s["weight"] for s in r.json()["steps"]] == [0, 25, 100]
    assert eng.get(f"/api/rollouts/{r.json()['id']}/").json()["match"] == rules


@pytest.mark.parametrize(
    "patch,field",
    [
        ({"steps": [0, 100]}, "steps"),
        ({"match": [{"header": "X-Up", "exact": "1"}]}, "match"),
        ({"match": [{"header": "x-a", "regex": "(?<=a)b"}]}, "match"),
        ({"match": {"header": "x-a", "exact": "1"}}, "match"),
        ({"match": [{"cookie": "c"}]}, "match"),
    ],
)
def test_api_bad_rules_are_400_naming_the_field(eng, service, patch, field):
    r = eng.post(
        "/api/rollouts/", {"service": service.name, "image_tag": "v2", **patch}, format="json"
    )
    # a weight-0 step without rules is a rule between fields: 422
    assert r.status_code == (422 if field == "steps" else 400), r.json()
    assert field in r.json()["detail"]
    assert not Rollout.objects.exists()


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    match=st.lists(
        st.dictionaries(
            st.sampled_from(["header", "cookie", "exact", "prefix", "regex", "value", "x"]),
            st.one_of(st.text(max_size=8), st.integers()),
            max_size=3,
        ),
        max_size=3,
    )
)
def test_api_fuzzed_rules_are_201_or_400_never_500(eng, service, match):
    r = eng.post(
        "/api/rollouts/",
        {"service": service.name, "image_tag": "v2", "match": match},
        format="json",
    )
    assert r.status_code in (201, 400), r.content
    if r.status_code == 400:
        assert set(r.json()["detail"]) == {"match"}
    Rollout.objects.all().delete()


def test_form_takes_rules_one_per_line(client, engineer, service):
    client.force_login(engineer)
    r = client.post(
        f"/deployments/services/{service.name}/rollout/",
        {"image_tag": "v2", "steps": "0, 100", "match": "cookie canary=always\nx-canary: insider"},
    )
    assert r.status_code == 302, r.content[:2000]
    rollout = Rollout.objects.get()
    assert rollout.match == [
        {"cookie": "canary", "value": "always"},
        {"header": "x-canary", "exact": "insider"},
    ]
    page = client.get(r["Location"]).content.decode()
    assert "cookie canary=always or x-canary = insider" in page


def test_form_names_a_bad_rule_line(client, engineer, service):
    client.force_login(engineer)
    r = client.post(
        f"/deployments/services/{service.name}/rollout/",
        {"image_tag": "v2", "steps": "0, 100", "match": "x-canary: insider\nnonsense"},
    )
    assert r.status_code == 400
    assert "line 2: write `header: value`" in r.content.decode()
    assert not Rollout.objects.exists()
