"""Results computed in the store against a plain pandas computation on the same events.

The embedded ClickHouse runs the real SQL; pandas re-derives every count from the raw rows
(first exposure per user, each uuid once, the window after exposure), and statsmodels/scipy
re-derive the tests from those counts.
"""

import datetime as dt
import json
import uuid

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from analytics.catalog import Event
from analytics.store.bulk import rows_insert
from experiments import stats
from experiments.models import Metric
from experiments.results import experiment_results
from experiments.tests.conftest import event_row, exposure_row
from experiments.tests.factories import MetricFactory

pytestmark = pytest.mark.django_db


def _generate(key: str, started: dt.datetime, rng) -> list[dict]:
    rows = []
    for i in range(1500):
        user = f"u{i}"
        variant = "treatment" if rng.random() < 0.5 else "control"
        first = started + dt.timedelta(hours=float(rng.uniform(0, 200)))
        rows.append(exposure_row(key, user, variant, first))
        if rng.random() < 0.2:  # a later exposure to the other arm must not count
            other = "control" if variant == "treatment" else "treatment"
            rows.append(exposure_row(key, user, other, first + dt.timedelta(hours=5)))
        rate = 0.3 if variant == "treatment" else 0.22
        if rng.random() < rate:
            at = first + dt.timedelta(hours=float(rng.uniform(0, 24 * 9)))  # some after 7 days
            row = event_row(Event.PROJECT_CREATED, user, at, {"book_type": "fiction"})
            rows.append(row)
            if rng.random() < 0.3:
                rows.append(dict(row))  # a retried event: same uuid, counted once
        if rng.random() < 0.1:  # before exposure: never counts
            rows.append(event_row(Event.PROJECT_CREATED, user, first - dt.timedelta(hours=1), {}))
        if rng.random() < 0.15:
            rows.append(
                event_row(
                    Event.PROJECT_CREATED,
                    user,
                    first + dt.timedelta(hours=2),
                    {"book_type": "textbook"},
                )
            )
        for _ in range(int(rng.poisson(0.6 if variant == "treatment" else 0.5))):
            at = first + dt.timedelta(hours=float(rng.uniform(0, 24 * 6)))
            amount = round(float(rng.exponential(20)), 2)
            rows.append(event_row(Event.PAYMENT, user, at, {"amount": amount}))
    rows.append(exposure_row("another-experiment", "u1", "control", started))
    return rows


def _pandas_per_user(rows, key, event, window_days, *, filter_=None, value=None):
    df = pd.DataFrame(rows).drop_duplicates("uuid")
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True)
    props = df["properties"].map(json.loads)
    exp = df[
        (df.event == Event.EXPERIMENT_ASSIGNMENT)
        & (props.map(lambda p: p.get("experiment_id")) == key)
    ]
    exp = exp.assign(variant=props[exp.index].map(lambda p: p["variant"]))
    first = exp.sort_values("timestamp").groupby("user_id").first()[["variant", "timestamp"]]
    ev = df[df.event == event].assign(props=props)
    if filter_:
        ev = ev[ev.props.map(lambda p: p.get(filter_[0]) == filter_[1])]
    merged = ev.merge(first, left_on="user_id", right_index=True, suffixes=("", "_first"))
    inside = merged[
        (merged.timestamp >= merged.timestamp_first)
        & (merged.timestamp < merged.timestamp_first + pd.Timedelta(days=window_days))
    ]
    if value:
        per_user = inside.assign(v=inside.props.map(lambda p: p[value])).groupby("user_id").v.sum()
    else:
        per_user = inside.groupby("user_id").size().clip(upper=1)
    first["value"] = per_user.reindex(first.index).fillna(0.0)
    return first


def test_conversion_results_match_pandas_and_statsmodels(analytics_store, running):
    conv = MetricFactory(key="created", event=Event.PROJECT_CREATED, window_days=7, cuped=False)
    experiment = running(days_ago=12, primary_metric=conv, sequential_testing=False)
    rows = _generate(experiment.key, experiment.started_at, np.random.default_rng(4))
    rows_insert(table="events", rows=rows)

    result = experiment_results(experiment)
    expected = _pandas_per_user(rows, experiment.key, Event.PROJECT_CREATED, 7)

    metric = result["metrics"][0]
    assert result["engine"] == "frequentist" and result["sequential"] is False
    by_variant = {r["key"]: r for r in metric["variants"]}
    for variant, group in expected.groupby("variant"):
        row = by_variant[variant]
        assert row["raw"] == {"users": len(group), "conversions": int(group.value.sum())}
        assert row["adjusted"] == row["raw"]  # neither CUPED nor capping
        assert result["srm"]["users"][variant] == len(group)
    c, t = by_variant["control"], by_variant["treatment"]
    assert c["control"] is True and c["comparison"] is None
    # The engine on pandas' counts (the engine itself is held to gbstats in test_stats).
    ref = stats.frequentist(
        stats.Proportion(c["raw"]["users"], c["raw"]["conversions"]),
        stats.Proportion(t["raw"]["users"], t["raw"]["conversions"]),
    )
    comparison = t["comparison"]
    assert set(comparison) == {"lift", "ci", "p_value", "p_value_adjusted"}
    assert comparison["p_value"] == pytest.approx(ref.p_value, rel=1e-12)
    rates = {v: g.value.mean() for v, g in expected.groupby("variant")}
    assert comparison["lift"] == pytest.approx(rates["treatment"] / rates["control"] - 1)
    assert comparison["ci"][0] < comparison["lift"] < comparison["ci"][1]
    counts = [result["srm"]["users"]["control"], result["srm"]["users"]["treatment"]]
    chi = sps.chisquare(counts).pvalue
    assert result["srm"]["p_value"] == pytest.approx(chi)
    assert result["srm"]["ok"] is bool(chi >= 0.001)
    daily_total = [v[-1] for v in result["timeseries"]["exposures"].values()]
    assert sorted(daily_total) == sorted(counts)


def test_filtered_conversion_and_mean_metric_match_pandas(analytics_store, running):
    textbook = MetricFactory(
        key="textbook",
        event=Event.PROJECT_CREATED,
        filter_property="book_type",
        filter_value="textbook",
        window_days=3,
    )
    revenue = MetricFactory(
        key="revenue", kind=Metric.Kind.MEAN, event=Event.PAYMENT, value_property="amount"
    )
    experiment = running(days_ago=12, primary_metric=revenue, sequential_testing=False)
    experiment.secondary_metrics.set([textbook])
    rows = _generate(experiment.key, experiment.started_at, np.random.default_rng(9))
    rows_insert(table="events", rows=rows)

    result = experiment_results(experiment)
    metrics = {m["key"]: m for m in result["metrics"]}
    assert [m["role"] for m in result["metrics"]] == ["primary", "secondary"]

    expected = _pandas_per_user(
        rows, experiment.key, Event.PROJECT_CREATED, 3, filter_=("book_type", "textbook")
    )
    for row in metrics["textbook"]["variants"]:
        group = expected[expected.variant == row["key"]]
        assert row["raw"]["conversions"] == int(group.value.sum())

    expected = _pandas_per_user(rows, experiment.key, Event.PAYMENT, 7, value="amount")
    values = {v: g.value.to_numpy() for v, g in expected.groupby("variant")}
    rows_out = {r["key"]: r for r in metrics["revenue"]["variants"]}
    for variant, arr in values.items():
        assert rows_out[variant]["raw"]["users"] == len(arr)
        assert rows_out[variant]["raw"]["mean"] == pytest.approx(arr.mean())
        assert rows_out[variant]["raw"]["variance"] == pytest.approx(arr.var(ddof=1))
    c, t = values["control"], values["treatment"]
    ref = stats.frequentist(
        stats.SampleMean(len(c), c.sum(), (c * c).sum()),
        stats.SampleMean(len(t), t.sum(), (t * t).sum()),
    )
    assert rows_out["treatment"]["comparison"]["p_value"] == pytest.approx(ref.p_value, rel=1e-6)
    assert rows_out["treatment"]["comparison"]["ci"] == pytest.approx(list(ref.ci), rel=1e-6)


def test_holm_is_applied_across_goal_metrics_not_guardrails(analytics_store, running):
    created = MetricFactory(key="created2", event=Event.PROJECT_CREATED)
    revenue = MetricFactory(
        key="revenue2", kind=Metric.Kind.MEAN, event=Event.PAYMENT, value_property="amount"
    )
    guard = MetricFactory(key="guard", event=Event.PAYMENT)
    experiment = running(days_ago=12, primary_metric=created, sequential_testing=False)
    experiment.secondary_metrics.set([revenue])
    experiment.guardrail_metrics.set([guard])
    rows_insert(
        table="events",
        rows=_generate(experiment.key, experiment.started_at, np.random.default_rng(2)),
    )
    result = experiment_results(experiment)
    treated = {m["key"]: m["variants"][1]["comparison"] for m in result["metrics"]}
    raw = [treated["created2"]["p_value"], treated["revenue2"]["p_value"]]
    from statsmodels.stats.multitest import multipletests

    adjusted = multipletests(raw, method="holm")[1]
    assert treated["created2"]["p_value_adjusted"] == pytest.approx(adjusted[0])
    assert treated["revenue2"]["p_value_adjusted"] == pytest.approx(adjusted[1])
    assert treated["guard"]["p_value_adjusted"] == treated["guard"]["p_value"]


def test_no_exposures_gives_an_empty_verdict(analytics_store, running):
    experiment = running()
    result = experiment_results(experiment)
    assert result["decision"]["kind"] == "empty"
    assert "No exposures yet" in result["verdict"]
    assert result["srm"] == {**result["srm"], "p_value": 1.0, "ok": True}


def test_srm_blocks_any_verdict(analytics_store, running):
    experiment = running()
    at = experiment.started_at + dt.timedelta(hours=1)
    rows = [exposure_row(experiment.key, f"c{i}", "control", at) for i in range(600)]
    rows += [exposure_row(experiment.key, f"t{i}", "treatment", at) for i in range(450)]
    rows += [event_row(Event.PROJECT_CREATED, f"t{i}", at, {}) for i in range(300)]
    rows += [event_row(Event.PROJECT_CREATED, f"c{i}", at, {}, uuid.uuid4()) for i in range(10)]
    rows_insert(table="events", rows=rows)
    result = experiment_results(experiment)
    assert result["srm"]["ok"] is False
    assert result["decision"]["kind"] == "srm"
    assert result["verdict"].startswith("Sample ratio mismatch")


def _pandas_pre_period(rows, per_user, event, *, value=None, days=30):
    """Each exposed user's metric in the `days` before their first exposure (pandas)."""
    df = pd.DataFrame(rows).drop_duplicates("uuid")
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True)
    ev = df[df.event == event].assign(props=df["properties"].map(json.loads))
    merged = ev.merge(
        per_user[["timestamp"]], left_on="user_id", right_index=True, suffixes=("", "_first")
    )
    before = merged[
        (merged.timestamp < merged.timestamp_first)
        & (merged.timestamp >= merged.timestamp_first - pd.Timedelta(days=days))
    ]
    if value:
        pre = before.assign(v=before.props.map(lambda p: p[value])).groupby("user_id").v.sum()
    else:
        pre = before.groupby("user_id").size().clip(upper=1)
    return pre.reindex(per_user.index).fillna(0.0)


def _cuped_rows(key, started, rng):
    """Users whose payments after exposure correlate with their payments in the 30 days
    before it, with a few very large payments (outliers for capping)."""
    rows = []
    for i in range(1200):
        user = f"p{i}"
        variant = "treatment" if i % 2 else "control"
        first = started + dt.timedelta(hours=float(rng.uniform(0, 100)))
        rows.append(exposure_row(key, user, variant, first))
        habit = float(rng.exponential(30))
        for _ in range(int(rng.poisson(1.5))):
            at = first - dt.timedelta(days=float(rng.uniform(0.1, 40)))  # some before 30 days
            rows.append(
                event_row(
                    Event.PAYMENT, user, at, {"amount": round(habit * rng.uniform(0.5, 1.5), 2)}
                )
            )
        for _ in range(int(rng.poisson(1.6 if variant == "treatment" else 1.5))):
            at = first + dt.timedelta(days=float(rng.uniform(0, 6.9)))
            amount = habit * rng.uniform(0.5, 1.5) * (50 if rng.random() < 0.01 else 1)
            rows.append(event_row(Event.PAYMENT, user, at, {"amount": round(amount, 2)}))
    return rows


@pytest.mark.parametrize(
    "capping,cap_value", [("none", None), ("absolute", 150.0), ("percentile", 0.95)]
)
def test_cuped_and_capping_match_pandas(analytics_store, running, capping, cap_value):
    revenue = MetricFactory(
        key="rev-cuped",
        kind=Metric.Kind.MEAN,
        event=Event.PAYMENT,
        value_property="amount",
        capping=capping,
        cap_value=cap_value,
    )
    experiment = running(days_ago=12, primary_metric=revenue, sequential_testing=False)
    rows = _cuped_rows(experiment.key, experiment.started_at, np.random.default_rng(12))
    rows_insert(table="events", rows=rows)

    result = experiment_results(experiment)
    metric = result["metrics"][0]
    per_user = _pandas_per_user(rows, experiment.key, Event.PAYMENT, 7, value="amount")
    per_user["pre"] = _pandas_pre_period(rows, per_user, Event.PAYMENT, value="amount")
    capped = per_user.copy()
    if capping == "absolute":
        capped["value"] = capped.value.clip(upper=cap_value)
        capped["pre"] = capped.pre.clip(upper=cap_value)
        assert metric["capping"]["cap"] == cap_value
    elif capping == "percentile":
        # ClickHouse's quantileExact: the element at floor(level * n) of the sorted values.
        def exact(x):
            return np.sort(x.to_numpy())[int(cap_value * len(x))]

        cap, pre_cap = exact(per_user.value), exact(per_user.pre)
        capped["value"] = capped.value.clip(upper=cap)
        capped["pre"] = capped.pre.clip(upper=pre_cap)
        assert metric["capping"]["cap"] == pytest.approx(cap)
    else:
        assert metric["capping"]["cap"] is None

    def adjusted(group):
        v, p = group.value.to_numpy(), group.pre.to_numpy()
        return stats.Adjusted(
            len(v),
            stats.SampleMean(len(v), v.sum(), (v * v).sum()),
            stats.SampleMean(len(p), p.sum(), (p * p).sum()),
            float((v * p).sum()),
        )

    arms = {variant: adjusted(g) for variant, g in capped.groupby("variant")}
    ref = stats.frequentist(arms["control"], arms["treatment"])
    by_variant = {r["key"]: r for r in metric["variants"]}
    for variant, group in per_user.groupby("variant"):
        assert by_variant[variant]["raw"]["mean"] == pytest.approx(group.value.mean())
    got = by_variant["treatment"]["comparison"]
    assert got["lift"] == pytest.approx(ref.lift, rel=1e-9)
    assert got["ci"] == pytest.approx(list(ref.ci), rel=1e-9)
    assert got["p_value"] == pytest.approx(ref.p_value, rel=1e-9)

    # CUPED is applied, and the variance reduction shown is 1 - Var(adjusted)/Var(capped),
    # with theta = Cov(value, pre)/Var(pre) over both arms (numpy on the pandas values).
    v, p = capped.value.to_numpy(), capped.pre.to_numpy()
    theta = np.cov(v, p, ddof=1)[0, 1] / p.var(ddof=1)
    assert metric["cuped"]["applied"] is True
    assert metric["cuped"]["theta"] == pytest.approx(theta, rel=1e-9)
    residual = {k: g.value - theta * g.pre for k, g in capped.groupby("variant")}
    before = sum(g.value.var(ddof=1) * len(g) for _, g in capped.groupby("variant"))
    after = sum(r.var(ddof=1) * len(r) for r in residual.values())
    assert metric["cuped"]["variance_reduction"] == pytest.approx(1 - after / before, rel=1e-9)
    # Outliers hide the pre-period correlation; capped, CUPED removes much more variance.
    assert metric["cuped"]["variance_reduction"] > (0.1 if capping != "none" else 0.0)
    for variant, r in residual.items():
        assert by_variant[variant]["adjusted"]["mean"] == pytest.approx(r.mean(), rel=1e-9)
        assert by_variant[variant]["adjusted"]["variance"] == pytest.approx(r.var(ddof=1), rel=1e-9)


def test_cuped_off_leaves_the_raw_values(analytics_store, running):
    revenue = MetricFactory(
        key="rev-plain",
        kind=Metric.Kind.MEAN,
        event=Event.PAYMENT,
        value_property="amount",
        cuped=False,
    )
    experiment = running(days_ago=12, primary_metric=revenue)
    rows_insert(
        table="events",
        rows=_cuped_rows(experiment.key, experiment.started_at, np.random.default_rng(3)),
    )
    metric = experiment_results(experiment)["metrics"][0]
    assert metric["cuped"]["applied"] is False and metric["cuped"]["variance_reduction"] is None
    for row in metric["variants"]:
        assert row["adjusted"] == row["raw"]


def test_ratio_metric_matches_pandas(analytics_store, running):
    """Projects created per session (delta method): numerator and denominator per user in the
    window after exposure, from pandas, through the same engine (held to gbstats)."""
    ratio = MetricFactory(
        key="projects-per-session",
        kind=Metric.Kind.RATIO,
        event=Event.PROJECT_CREATED,
        denominator_event=Event.SESSION_START,
    )
    experiment = running(days_ago=12, primary_metric=ratio)
    rng = np.random.default_rng(21)
    rows = []
    for i in range(1000):
        user, variant = f"r{i}", ("treatment" if i % 2 else "control")
        first = experiment.started_at + dt.timedelta(hours=float(rng.uniform(0, 100)))
        rows.append(exposure_row(experiment.key, user, variant, first))
        for _ in range(int(rng.poisson(3))):
            at = first + dt.timedelta(days=float(rng.uniform(-3, 9)))  # some outside the window
            rows.append(event_row(Event.SESSION_START, user, at, {}))
            if rng.random() < (0.5 if variant == "treatment" else 0.4):
                rows.append(event_row(Event.PROJECT_CREATED, user, at, {}))
    rows_insert(table="events", rows=rows)

    metric = experiment_results(experiment)["metrics"][0]
    arms = {}
    for variant in ("control", "treatment"):
        n_counts = _window_counts(rows, experiment.key, Event.PROJECT_CREATED, variant)
        d_counts = _window_counts(rows, experiment.key, Event.SESSION_START, variant)
        arms[variant] = stats.Ratio(
            len(n_counts),
            stats.SampleMean(len(n_counts), n_counts.sum(), (n_counts**2).sum()),
            stats.SampleMean(len(d_counts), d_counts.sum(), (d_counts**2).sum()),
            float((n_counts * d_counts).sum()),
        )
    by_variant = {r["key"]: r for r in metric["variants"]}
    for variant, arm in arms.items():
        assert by_variant[variant]["raw"]["mean"] == pytest.approx(arm.mean, rel=1e-12)
        assert by_variant[variant]["raw"]["variance"] == pytest.approx(arm.variance, rel=1e-9)
    ref = stats.frequentist(arms["control"], arms["treatment"], sequential=True)
    got = by_variant["treatment"]["comparison"]
    assert got["lift"] == pytest.approx(ref.lift, rel=1e-9)
    assert got["ci"] == pytest.approx(list(ref.ci), rel=1e-9)
    assert metric["cuped"]["enabled"] is False  # gbstats has no CUPED for ratios


def _window_counts(rows, key, event, variant, window_days=7):
    """Events of `event` per exposed user of `variant` in the window after first exposure."""
    df = pd.DataFrame(rows).drop_duplicates("uuid")
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True)
    props = df["properties"].map(json.loads)
    exp = df[
        (df.event == Event.EXPERIMENT_ASSIGNMENT)
        & (props.map(lambda p: p.get("experiment_id")) == key)
    ]
    exp = exp.assign(variant=props[exp.index].map(lambda p: p["variant"]))
    first = exp.sort_values("timestamp").groupby("user_id").first()
    first = first[first.variant == variant]
    ev = df[df.event == event].merge(
        first[["timestamp"]], left_on="user_id", right_index=True, suffixes=("", "_first")
    )
    inside = ev[
        (ev.timestamp >= ev.timestamp_first)
        & (ev.timestamp < ev.timestamp_first + pd.Timedelta(days=window_days))
    ]
    return inside.groupby("user_id").size().reindex(first.index).fillna(0).to_numpy(dtype=float)
