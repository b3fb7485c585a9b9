"""Results split by dimension, against pandas on the same events; the multiple-comparison
correction against statsmodels; the API's parameter and errors; pre-registration."""

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.multitest import multipletests

from analytics.catalog import Event
from analytics.store.bulk import rows_insert
from core.errors import InvalidRequest
from experiments import stats
from experiments.dimensions import OTHER, TOP_VALUES, dimension_parse, dimensions_parse
from experiments.results import experiment_results
from experiments.tests.conftest import event_row
from experiments.tests.factories import MetricFactory

COUNTRIES = [f"C{i:02d}" for i in range(TOP_VALUES + 5)]  # more than the top values


def _exposure(key, user, variant, at, **props):
    return event_row(
        Event.EXPERIMENT_ASSIGNMENT, user, at, {"experiment_id": key, "variant": variant, **props}
    )


def _generate(key: str, started: dt.datetime, rng) -> tuple[list[dict], list[dict]]:
    """Events with enriched exposures (a later exposure from elsewhere must not count) and
    users-table rows (a later update wins)."""
    rows, users = [], []
    weights = np.linspace(3, 0.2, len(COUNTRIES))
    weights /= weights.sum()
    for i in range(1600):
        user = f"u{i}"
        variant = "treatment" if rng.random() < 0.5 else "control"
        first = started + dt.timedelta(hours=float(rng.uniform(0, 200)))
        country = str(rng.choice(COUNTRIES, p=weights))
        device = str(rng.choice(["desktop", "mobile", "tablet"]))
        plan = ["a", "b", 7][i % 3]
        props = {"geo_country": country, "device_type": device, "user_tier": "free", "plan": plan}
        if i % 11 == 0:
            props = {"plan": plan}  # an exposure without enrichment: '(not set)'
        rows.append(_exposure(key, user, variant, first, **props))
        if rng.random() < 0.3:
            later = first + dt.timedelta(hours=3)
            rows.append(_exposure(key, user, variant, later, geo_country="ZZ", plan="later"))
        rate = (0.3 if variant == "treatment" else 0.2) + (0.1 if device == "mobile" else 0)
        if rng.random() < rate:
            at = first + dt.timedelta(hours=float(rng.uniform(0, 24 * 9)))
            rows.append(event_row(Event.PROJECT_CREATED, user, at, {}))
        for _ in range(int(rng.poisson(0.7))):
            at = first + dt.timedelta(hours=float(rng.uniform(0, 24 * 6)))
            rows.append(
                event_row(Event.PAYMENT, user, at, {"amount": round(rng.exponential(9), 2)})
            )
        if i % 2 == 0:
            source = str(rng.choice(["ads", "organic", "referral"]))
            for n, s in enumerate(["stale", source]):
                users.append(
                    {
                        "user_id": user,
                        "signup_at": started - dt.timedelta(days=30),
                        "signup_source": s,
                        "updated_at": started + dt.timedelta(minutes=n),
                    }
                )
    return rows, users


def _per_user(rows, users, key, event, *, value=None, window_days=7):
    """pandas: each user's first exposure (variant, its properties), user properties now, and
    the metric in the window after it (each uuid once)."""
    df = pd.DataFrame(rows).drop_duplicates("uuid")
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True)
    df["props"] = df["properties"].map(json.loads)
    exp = df[df.event == Event.EXPERIMENT_ASSIGNMENT].sort_values("timestamp")
    first = exp.groupby("user_id").first()
    first["variant"] = first.props.map(lambda p: p["variant"])
    first["country"] = first.props.map(lambda p: p.get("geo_country", ""))
    first["device_type"] = first.props.map(lambda p: p.get("device_type", ""))
    first["exposure.plan"] = first.props.map(lambda p: str(p["plan"]))
    now = pd.DataFrame(users).sort_values("updated_at").groupby("user_id").last()
    first["user.signup_source"] = now.signup_source.reindex(first.index).fillna("")
    ev = df[df.event == event].merge(
        first[["timestamp"]], left_on="user_id", right_index=True, suffixes=("", "_first")
    )
    ev = ev[
        (ev.timestamp >= ev.timestamp_first)
        & (ev.timestamp < ev.timestamp_first + pd.Timedelta(days=window_days))
    ]
    if value:
        per = ev.assign(v=ev.props.map(lambda p: p[value])).groupby("user_id").v.sum()
    else:
        per = ev.groupby("user_id").size().clip(upper=1)
    first["value"] = per.reindex(first.index).fillna(0.0)
    return first


def _flat(node, path=""):
    """{path: leaf} of a nested answer (numbers compared with a tolerance: sums may be added
    in another order)."""
    if isinstance(node, dict):
        return {
            k: v for key, child in node.items() for k, v in _flat(child, f"{path}.{key}").items()
        }
    if isinstance(node, list):
        return {k: v for i, c in enumerate(node) for k, v in _flat(c, f"{path}[{i}]").items()}
    return {path: node}


def _expected_slices(per_user: pd.DataFrame, column: str) -> dict:
    """{label: frame} with the top values by users apart and the rest as OTHER."""
    counts = per_user.groupby(column).size().reset_index(name="n")
    counts = counts.sort_values(["n", column], ascending=[False, True])
    top = list(counts[column][:TOP_VALUES])
    out = {v: per_user[per_user[column] == v] for v in top}
    rest = per_user[~per_user[column].isin(top)]
    if len(rest):
        out[OTHER] = rest
    return out


@pytest.mark.django_db
@pytest.mark.parametrize("engine", ["frequentist", "bayesian"])
def test_split_by_dimension_matches_pandas(analytics_store, running, engine):
    conv = MetricFactory(key="created", event=Event.PROJECT_CREATED, cuped=False)
    revenue = MetricFactory(key="rev", kind="mean", event=Event.PAYMENT, value_property="amount")
    experiment = running(days_ago=12, primary_metric=conv, engine=engine, sequential_testing=False)
    experiment.secondary_metrics.set([revenue])
    rows, users = _generate(experiment.key, experiment.started_at, np.random.default_rng(3))
    rows_insert(table="events", rows=rows)
    rows_insert(table="users", rows=users)
    names = ["country", "exposure.plan", "user.signup_source"]
    result = experiment_results(experiment, dimensions_parse(names))
    plain = experiment_results(experiment)
    # The dimensions change nothing in the rest of the readout.
    for field in ("metrics", "srm", "decision", "timeseries"):
        got, want = _flat(result[field]), _flat(plain[field])
        assert got.keys() == want.keys()
        for path, expected in want.items():
            if isinstance(expected, float) and not isinstance(expected, bool):
                assert got[path] == pytest.approx(expected, rel=1e-9), path
            else:
                assert got[path] == expected, path

    conversions = _per_user(rows, users, experiment.key, Event.PROJECT_CREATED)
    amounts = _per_user(rows, users, experiment.key, Event.PAYMENT, value="amount")
    assert [b["name"] for b in result["dimensions"]] == names
    for block in result["dimensions"]:
        column = block["name"]
        expected = _expected_slices(conversions, column)
        got = {OTHER if v["other"] else v["value"]: v for v in block["values"]}
        assert list(got) == list(expected)  # most users first, the rest last
        assert len(got) <= TOP_VALUES + 1
        for label, frame in expected.items():
            value = got[label]
            assert value["users"] == frame.groupby("variant").size().to_dict()
            created, rev = value["metrics"]
            for row in created["variants"]:
                mine = frame[frame.variant == row["key"]]
                assert row["raw"] == {"users": len(mine), "conversions": int(mine.value.sum())}
            for row in rev["variants"]:
                mine = amounts.loc[frame[frame.variant == row["key"]].index]
                assert row["raw"]["mean"] == pytest.approx(mine.value.mean(), rel=1e-9)
                assert row["raw"]["variance"] == pytest.approx(mine.value.var(), rel=1e-9)
            # Each value's comparison is the engine's on that value's statistics.
            control, treated = created["variants"]
            args = (
                stats.Proportion(control["raw"]["users"], control["raw"]["conversions"]),
                stats.Proportion(treated["raw"]["users"], treated["raw"]["conversions"]),
            )
            if engine == "frequentist":
                ref = stats.frequentist(*args, alpha=experiment.alpha)
            else:
                ref = stats.bayesian(*args, alpha=experiment.alpha)
            if ref is not None:
                assert treated["comparison"]["lift"] == pytest.approx(ref.lift, rel=1e-12)
                assert treated["comparison"]["ci"] == pytest.approx(list(ref.ci), rel=1e-12)
        assert block["pre_registered"] is False and "after looking" in block["warning"]
        cells = [
            r["comparison"]
            for v in block["values"]
            for m in v["metrics"]
            for r in m["variants"]
            if r["comparison"] and r["comparison"]["lift"] is not None
        ]
        if engine == "frequentist":
            assert block["correction"]["method"] == "benjamini-hochberg"
            _, adjusted, _, _ = multipletests([c["p_value"] for c in cells], method="fdr_bh")
            assert [c["p_value_adjusted"] for c in cells] == pytest.approx(list(adjusted))
        else:
            assert block["correction"]["method"] == "none"
            assert all("p_value" not in c for c in cells)


@pytest.mark.django_db
def test_unset_values_and_first_exposure_semantics(analytics_store, running):
    experiment = running(days_ago=3)
    at = experiment.started_at + dt.timedelta(hours=1)
    rows = [
        _exposure(experiment.key, "a", "control", at, device_type="mobile"),
        _exposure(experiment.key, "a", "control", at + dt.timedelta(hours=1), device_type="tv"),
        _exposure(experiment.key, "b", "treatment", at),
    ]
    rows_insert(table="events", rows=rows)
    block = experiment_results(experiment, [dimension_parse("device_type")])["dimensions"][0]
    values = {(v["value"], v["label"]): v["users"] for v in block["values"]}
    assert values == {
        ("mobile", "mobile"): {"control": 1, "treatment": 0},
        ("", "(not set)"): {"control": 0, "treatment": 1},
    }


@given(st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=40))
@settings(max_examples=200, deadline=None)
def test_benjamini_hochberg_matches_statsmodels(p_values):
    _, expected, _, _ = multipletests(p_values, method="fdr_bh")
    assert stats.benjamini_hochberg(p_values) == pytest.approx(list(expected), abs=1e-12)


@pytest.mark.parametrize(
    "name", ["nope", "exposure.", "exposure.variant", "exposure.a b", "user.email", "x" * 300]
)
def test_unknown_dimensions_are_refused_naming_the_field(name):
    with pytest.raises(InvalidRequest) as caught:
        dimension_parse(name)
    assert caught.value.field == "dimension" and "unknown dimension" in caught.value.problem


def test_at_most_three_dimensions():
    assert [d.name for d in dimensions_parse(["country", "country", "tier"])] == [
        "country",
        "tier",
    ]
    with pytest.raises(InvalidRequest):
        dimensions_parse(["country", "tier", "device_type", "user.tier"])


@pytest.mark.django_db
def test_api_dimension_parameter(api_client_for, pm, running, analytics_store):
    experiment = running(key="split", days_ago=2)
    at = experiment.started_at
    rows_insert(
        table="events",
        rows=[
            _exposure("split", f"s{i}", "treatment" if i % 2 else "control", at, geo_country="FR")
            for i in range(40)
        ],
    )
    client = api_client_for(pm)
    bad = client.get("/api/experiments/split/results/", {"dimension": "shoe_size"})
    assert bad.status_code == 400
    assert bad.json()["error"] == "invalid" and "dimension" in bad.json()["detail"]
    too_many = client.get(
        "/api/experiments/split/results/?dimension=country&dimension=tier"
        "&dimension=device_type&dimension=user.tier"
    )
    # four distinct dimensions: each valid, their number a rule the schema cannot state
    assert too_many.status_code == 422 and "dimension" in too_many.json()["detail"]
    plain = client.get("/api/experiments/split/results/").json()
    assert plain["dimensions"] == []
    body = client.get("/api/experiments/split/results/?dimension=country").json()
    (block,) = body["dimensions"]
    assert block["name"] == "country" and block["values"][0]["value"] == "FR"
    assert block["values"][0]["users"] == {"control": 20, "treatment": 20}


@pytest.mark.django_db
def test_dimensions_set_before_start_are_pre_registered(pm, analytics_store):
    from django.core.exceptions import ValidationError

    from experiments.services import experiment_start
    from experiments.tests.factories import ExperimentFactory

    experiment = ExperimentFactory(key="prereg", dimensions=["country", "exposure.plan"])
    experiment.full_clean()
    experiment = experiment_start(experiment=experiment, by=pm)
    assert experiment.preregistered_dimensions == ["country", "exposure.plan"]
    experiment.dimensions = ["country", "exposure.plan", "tier"]
    experiment.save()
    result = experiment_results(experiment, dimensions_parse(["country", "tier"]))
    country, tier = result["dimensions"]
    assert country["pre_registered"] is True and country["warning"] is None
    assert tier["pre_registered"] is False and "not pre-registered" in tier["warning"]
    experiment.dimensions = ["country", "shoe_size"]
    with pytest.raises(ValidationError) as caught:
        experiment.full_clean()
    assert "dimensions" in caught.value.message_dict
