"""Quantile metrics (p50/p90 of a numeric property) computed in the store, against numpy and
pandas on the same events; the engines' numbers on them are held to gbstats in test_stats."""

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from analytics.catalog import Event
from analytics.store.bulk import rows_insert
from core.tests.factories import PASSWORD
from experiments import stats
from experiments.dimensions import dimension_parse
from experiments.models import Metric
from experiments.results import experiment_results
from experiments.tests.conftest import event_row
from experiments.tests.factories import MetricFactory

pytestmark = pytest.mark.django_db


def _store_quantile(values, level: float) -> float:
    """ClickHouse's quantileExact: the value at index floor(level x n) of the sorted values."""
    ordered = np.sort(np.asarray(values, dtype=float))
    return float(ordered[min(int(level * len(ordered)), len(ordered) - 1)])


def _generate(key, started, rng):
    rows = []
    for i in range(900):
        user = f"r{i}"
        variant = "treatment" if i % 2 else "control"
        first = started + dt.timedelta(hours=float(rng.uniform(0, 100)))
        device = "mobile" if rng.random() < 0.4 else "desktop"
        rows.append(
            event_row(
                Event.EXPERIMENT_ASSIGNMENT,
                user,
                first,
                {"experiment_id": key, "variant": variant, "device_type": device},
            )
        )
        speed = 0.8 if variant == "treatment" else 1.0  # renders are faster in treatment
        user_scale = rng.lognormal(0, 0.4)
        for _ in range(int(rng.poisson(2.5))):
            at = first + dt.timedelta(hours=float(rng.uniform(-30, 24 * 9)))  # some outside
            seconds = round(float(user_scale * speed * rng.gamma(2.0, 30.0)), 2)
            row = event_row(Event.VIDEO_COMPLETED, user, at, {"processing_seconds": seconds})
            rows.append(row)
            if rng.random() < 0.1:
                rows.append(dict(row))  # a retried event counts once
    return rows


def _per_user(rows, key, window_days=7):
    df = pd.DataFrame(rows).drop_duplicates("uuid")
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True)
    df["props"] = df["properties"].map(json.loads)
    exp = df[df.event == Event.EXPERIMENT_ASSIGNMENT].sort_values("timestamp")
    first = exp.groupby("user_id").first()
    first["variant"] = first.props.map(lambda p: p["variant"])
    first["device_type"] = first.props.map(lambda p: p["device_type"])
    ev = df[df.event == Event.VIDEO_COMPLETED].merge(
        first[["timestamp"]], left_on="user_id", right_index=True, suffixes=("", "_first")
    )
    ev = ev[
        (ev.timestamp >= ev.timestamp_first)
        & (ev.timestamp < ev.timestamp_first + pd.Timedelta(days=window_days))
    ]
    ev = ev.assign(v=ev.props.map(lambda p: p["processing_seconds"]))
    first["values"] = ev.groupby("user_id").v.apply(list).reindex(first.index)
    first["values"] = first["values"].map(lambda x: x if isinstance(x, list) else [])
    return first


def _expected_statistic(group: pd.DataFrame, level: float, scope: str) -> stats.Quantile:
    """The sufficient statistics from pandas' per-user values, as the store must give them."""
    if scope == "user":
        values = np.array([sum(v) for v in group["values"] if v])
    else:
        values = np.array([x for v in group["values"] for x in v])
    n = len(values)
    n_star = stats.quantile_n_star(n)
    low, high = stats.quantile_grid_levels(level)[stats.N_STAR_VALUES.index(n_star)]
    hat = _store_quantile(values, level)
    common = {
        "n": n,
        "n_star": n_star,
        "nu": level,
        "quantile_hat": hat,
        "lower": _store_quantile(values, low),
        "upper": _store_quantile(values, high),
    }
    if scope == "user":
        return stats.Quantile(**common)
    below = np.array([sum(x <= hat for x in v) for v in group["values"]], dtype=float)
    events = np.array([len(v) for v in group["values"]], dtype=float)
    return stats.QuantileClustered(
        **common,
        main_sum=float(below.sum()),
        main_sum_squares=float((below**2).sum()),
        denominator_sum=float(events.sum()),
        denominator_sum_squares=float((events**2).sum()),
        main_denominator_sum_product=float((below * events).sum()),
        n_clusters=len(group),
    )


@pytest.mark.parametrize(
    ("level", "scope", "engine"),
    [(0.9, "event", "frequentist"), (0.5, "user", "frequentist"), (0.9, "event", "bayesian")],
)
def test_quantile_metric_matches_numpy_and_the_engine(
    analytics_store, running, level, scope, engine
):
    metric = MetricFactory(
        key=f"render-p{int(level * 100)}-{scope}",
        kind=Metric.Kind.QUANTILE,
        event=Event.VIDEO_COMPLETED,
        value_property="processing_seconds",
        quantile=level,
        quantile_scope=scope,
        direction=Metric.Direction.DECREASE,
    )
    metric.full_clean()
    experiment = running(days_ago=12, primary_metric=metric, engine=engine)
    rows = _generate(experiment.key, experiment.started_at, np.random.default_rng(11))
    rows_insert(table="events", rows=rows)

    result = experiment_results(experiment, [dimension_parse("device_type")])
    per_user = _per_user(rows, experiment.key)
    (readout,) = result["metrics"]
    assert readout["kind"] == "quantile" and readout["cuped"]["enabled"] is False
    assert readout["quantile"]["scope"] == scope
    expected = {v: _expected_statistic(g, level, scope) for v, g in per_user.groupby("variant")}
    by_key = {r["key"]: r for r in readout["variants"]}
    for variant, statistic in expected.items():
        row = by_key[variant]["raw"]
        assert row["users"] == (per_user.variant == variant).sum()
        assert row["values"] == statistic.n
        assert row["quantile"] == pytest.approx(statistic.quantile_hat, rel=1e-12)
        assert row["variance"] == pytest.approx(statistic.variance, rel=1e-9)
        half = 1.959963984540054 * np.sqrt(statistic.variance / statistic.n)
        assert row["ci"] == pytest.approx([row["quantile"] - half, row["quantile"] + half])
        assert by_key[variant]["adjusted"] == row
    comparison = by_key["treatment"]["comparison"]
    args = (expected["control"], expected["treatment"])
    if engine == "frequentist":
        ref = stats.frequentist(
            *args, alpha=experiment.alpha, sequential=True, tuning=stats.DEFAULT_TUNING
        )
        assert comparison["p_value"] == pytest.approx(ref.p_value, rel=1e-9)
    else:
        ref = stats.bayesian(*args, alpha=experiment.alpha, decrease_is_good=True)
        assert comparison["chance_to_win"] == pytest.approx(ref.chance_to_win, rel=1e-9)
    assert comparison["lift"] == pytest.approx(ref.lift, rel=1e-9)
    assert comparison["ci"] == pytest.approx(list(ref.ci), rel=1e-9)
    assert comparison["lift"] < 0  # faster renders in treatment
    assert result["srm"]["users"] == per_user.groupby("variant").size().to_dict()

    # Per dimension value: the quantile over that value's users only.
    (block,) = result["dimensions"]
    for value in block["values"]:
        group = per_user[per_user.device_type == value["value"]]
        for row in value["metrics"][0]["variants"]:
            mine = group[group.variant == row["key"]]
            statistic = _expected_statistic(mine, level, scope)
            assert row["raw"]["quantile"] == pytest.approx(statistic.quantile_hat, rel=1e-12)
            assert row["raw"]["values"] == statistic.n


def test_quantile_metric_definition_is_checked():
    metric = Metric(key="q", name="q", kind=Metric.Kind.QUANTILE, event="video_completed")
    with pytest.raises(ValidationError) as caught:
        metric.full_clean()
    assert "value_property" in caught.value.message_dict
    metric.value_property = "processing_seconds"
    with pytest.raises(ValidationError) as caught:
        metric.full_clean()
    assert "quantile" in caught.value.message_dict
    metric.quantile = 0.9
    metric.full_clean()
    metric.capping, metric.cap_value = Metric.Capping.ABSOLUTE, 100.0
    with pytest.raises(ValidationError) as caught:
        metric.full_clean()
    assert "capping" in caught.value.message_dict
    mean = Metric(key="m", name="m", kind=Metric.Kind.MEAN, event="payment", quantile=0.5)
    with pytest.raises(ValidationError) as caught:
        mean.full_clean()
    assert "quantile" in caught.value.message_dict


def test_quantile_with_too_few_values_has_no_comparison(analytics_store, running, pm):
    metric = MetricFactory(
        key="render-p90-few",
        kind=Metric.Kind.QUANTILE,
        event=Event.VIDEO_COMPLETED,
        value_property="processing_seconds",
        quantile=0.9,
    )
    experiment = running(days_ago=2, primary_metric=metric)
    at = experiment.started_at + dt.timedelta(hours=1)
    rows = []
    for i in range(20):
        variant = "treatment" if i % 2 else "control"
        props = {"experiment_id": experiment.key, "variant": variant}
        rows.append(event_row(Event.EXPERIMENT_ASSIGNMENT, f"f{i}", at, props))
        rows.append(event_row(Event.VIDEO_COMPLETED, f"f{i}", at, {"processing_seconds": i}))
    rows_insert(table="events", rows=rows)
    result = experiment_results(experiment)
    control, treatment = result["metrics"][0]["variants"]
    assert control["raw"]["values"] == 10 and control["raw"]["ci"] is None
    assert treatment["comparison"]["lift"] is None
    assert result["srm"]["users"] == {"control": 10, "treatment": 10}
    assert result["timeseries"]["primary"] == {}
    client = Client()
    assert client.login(username=pm.username, password=PASSWORD)
    page = client.get(f"/experiments/{experiment.key}/", {"dimension": "country"})
    body = page.content.decode()
    assert page.status_code == 200 and "p90" in body and "too few values" in body
