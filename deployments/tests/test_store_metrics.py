"""Product metrics from the analytics store, on generated events with a known effect.

The groups read by SQL are checked against pandas on the same events; the lift, its variance
and the sequential interval against an independent delta-method computation (numpy) and
Waudby-Smith's formula written out here; the verdicts on effects planted in the data.
"""

import datetime as dt
import math
import uuid

import numpy as np
import pandas as pd
import pytest

from core.comparisons import Arm
from deployments.metrics.store import (
    FAIL,
    NO_DATA,
    PASS,
    StoreMetric,
    StoreMetricError,
    store_metric_arms,
    store_metric_evaluate,
    store_metric_judge,
)
from deployments.tests.factories import ServiceFactory

START = dt.datetime(2026, 11, 2, 12, 0, tzinfo=dt.UTC)
END = START + dt.timedelta(minutes=30)
SUCCESS = StoreMetric(name="render_success", event="video_completed", per_event="video_rendered")


def generated(service, *, users=3000, share=0.1, success=(0.92, 0.92), seed=0, srm_drop=0.0):
    """Events of `users` users: per user 1-4 renders, each completed with the group's rate.
    `srm_drop` loses that share of the canary's users (they never send an event)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(users):
        canary = rng.random() < share
        if canary and rng.random() < srm_drop:
            continue
        tag = "v2" if canary else "v1"
        release = rng.choice(
            [f"{service.name}:{tag}", f"{service.name}@{tag}", service.image_for(tag), tag]
        )
        props = f'{{"release": "{release}"}}'
        for _ in range(int(rng.integers(1, 5))):
            at = START + dt.timedelta(seconds=float(rng.uniform(0, 1799)))
            rows.append(_row("video_rendered", f"u{i}", at, props))
            if rng.random() < success[int(canary)]:
                rows.append(_row("video_completed", f"u{i}", at, props))
    return rows


def _row(event, user, at, props):
    return {
        "uuid": str(uuid.uuid4()),
        "event": event,
        "user_id": user,
        "timestamp": at,
        "properties": props,
    }


def pandas_groups(rows, service):
    """Per group: users with a render, and per-user completed / rendered, independently."""
    df = pd.DataFrame(rows)
    df["release"] = df["properties"].str.extract(r'"release": "([^"]+)"')[0]
    df["tag"] = df["release"].str.extract(r"(v\d)$")[0]
    per_user = (
        df.pivot_table(index=["user_id", "tag"], columns="event", values="uuid", aggfunc="count")
        .fillna(0)
        .reset_index()
    )
    return {
        "canary": per_user[per_user.tag == "v2"],
        "stable": per_user[per_user.tag == "v1"],
    }


def delta_lift(c, t):
    """Relative lift of the ratio metric sum(num)/sum(den) and its delta-method variance,
    from per-user arrays (independent of the sufficient-statistics code)."""

    def ratio_var(num, den):
        n = len(num)
        mn, md = num.mean(), den.mean()
        cov = np.cov(num, den, ddof=1)
        return (cov[0, 0] / md**2 - 2 * cov[0, 1] * mn / md**3 + mn**2 * cov[1, 1] / md**4) / n

    rc = c.video_completed.sum() / c.video_rendered.sum()
    rt = t.video_completed.sum() / t.video_rendered.sum()
    vc = ratio_var(c.video_completed.to_numpy(), c.video_rendered.to_numpy())
    vt = ratio_var(t.video_completed.to_numpy(), t.video_rendered.to_numpy())
    return (rt - rc) / rc, vt / rc**2 + vc * rt**2 / rc**4, len(c) + len(t)


def waudby_smith_half_width(variance, n, alpha=0.05, tuning=1000.0):
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning
    return math.sqrt(
        variance * 2 * (n * rho2 + 1) / (n * rho2) * math.log(math.sqrt(n * rho2 + 1) / alpha)
    )


@pytest.fixture
def svc(db):
    return ServiceFactory(name="video-renderer")


def load(analytics_store, rows):
    analytics_store.insert("events", rows)


def evaluate(svc, metric=SUCCESS, share=10.0):
    return store_metric_evaluate(
        metric,
        service=svc,
        canary_tag="v2",
        stable_tag="v1",
        start=START,
        end=END,
        canary_share=share,
    )


def test_groups_and_lift_match_pandas_and_the_delta_method(svc, analytics_store):
    rows = generated(svc, success=(0.92, 0.82), seed=1)
    load(analytics_store, rows)
    arms = store_metric_arms(
        SUCCESS, service=svc, canary_tag="v2", stable_tag="v1", start=START, end=END
    )
    groups = pandas_groups(rows, svc)
    for name in ("canary", "stable"):
        g = groups[name]
        assert arms[name].users == len(g)
        assert arms[name].numerator == g.video_completed.sum()
        assert arms[name].denominator == g.video_rendered.sum()
        assert arms[name].products == pytest.approx((g.video_completed * g.video_rendered).sum())
    assert arms["both"].users == 0
    result = evaluate(svc)
    lift, variance, n = delta_lift(groups["stable"], groups["canary"])
    assert result["lift"] == pytest.approx(lift, rel=1e-9)
    half = waudby_smith_half_width(variance, n)
    assert result["ci"] == pytest.approx([lift - half, lift + half], rel=1e-6)
    assert result["verdict"] == FAIL and "render_success" in result["why"]


def test_a_ten_percent_drop_in_render_success_is_caught(svc, analytics_store):
    load(analytics_store, generated(svc, success=(0.92, 0.828), seed=2))
    result = evaluate(svc)
    assert result["verdict"] == FAIL
    assert result["lift"] == pytest.approx(-0.10, abs=0.04)
    assert result["ci"][1] < 0
    assert "render_success" in result["why"] and "-" in result["why"]


def test_dry_run_and_tolerance(svc, analytics_store):
    load(analytics_store, generated(svc, success=(0.92, 0.828), seed=2))
    assert evaluate(svc, StoreMetric(name="s", dry_run=True))["dry_run"] is True
    tolerant = evaluate(svc, StoreMetric(name="s", tolerance_percent=30))
    assert tolerant["verdict"] == PASS  # significant, but within the tolerance


def test_an_improvement_does_not_fail_a_metric_whose_bad_way_is_down(svc, analytics_store):
    load(analytics_store, generated(svc, success=(0.80, 0.92), seed=3))
    assert evaluate(svc)["verdict"] == PASS


def test_no_effect_passes_at_every_look(svc, analytics_store):
    """The same users looked at every 5 minutes: the sequential test keeps the false alarms
    down over repeated looks (each of 30 A/A datasets looked at 6 times)."""
    alarms = 0
    for seed in range(30):
        analytics_store.command("TRUNCATE TABLE events")
        load(analytics_store, generated(svc, users=1500, share=0.25, seed=100 + seed))
        for minutes in (5, 10, 15, 20, 25, 30):
            result = store_metric_evaluate(
                SUCCESS,
                service=svc,
                canary_tag="v2",
                stable_tag="v1",
                start=START,
                end=START + dt.timedelta(minutes=minutes),
                canary_share=25,
            )
            if result["verdict"] == FAIL:
                alarms += 1
                break
    assert alarms <= 3  # at most 10 % of 30, where 5 % is expected (binomial: P(>3) ~ 6 %)


def test_sample_ratio_mismatch_fails_the_metric(svc, analytics_store):
    load(analytics_store, generated(svc, users=6000, share=0.2, srm_drop=0.3, seed=4))
    result = evaluate(svc, share=20)
    assert result["verdict"] == FAIL
    assert "sample ratio mismatch" in result["why"] and result["srm_p_value"] < 0.001


def test_too_few_users_is_no_data_and_other_releases_are_ignored(svc, analytics_store):
    at = START + dt.timedelta(minutes=1)
    other = [
        _row("video_rendered", f"o{i}", at, f'{{"release": "book-parser:v{1 + i % 2}"}}')
        for i in range(500)
    ]
    load(analytics_store, generated(svc, users=300, seed=5) + other)
    result = evaluate(svc)
    assert result["verdict"] == NO_DATA and "at least 100" in result["why"]
    assert result["canary_users"] + result["stable_users"] == 300
    assert evaluate(svc, share=100)["verdict"] == NO_DATA


def test_users_served_by_both_versions_are_left_out(svc, analytics_store):
    props = {tag: f'{{"release": "video-renderer:{tag}"}}' for tag in ("v1", "v2")}
    at = START + dt.timedelta(minutes=1)
    load(
        analytics_store,
        [
            _row("video_rendered", "x", at, props["v1"]),
            _row("video_rendered", "x", at, props["v2"]),
        ],
    )
    arms = store_metric_arms(
        SUCCESS, service=svc, canary_tag="v2", stable_tag="v1", start=START, end=END
    )
    assert arms["both"].users == 1 and arms["canary"].users == arms["stable"].users == 0


def test_conversion_among_users_of_an_event(svc, analytics_store):
    rows = generated(svc, success=(0.92, 0.6), seed=7)
    load(analytics_store, rows)
    metric = StoreMetric(
        name="completes", query="conversion", event="video_completed", from_event="video_rendered"
    )
    result = evaluate(svc, metric)
    groups = pandas_groups(rows, svc)
    stable = groups["stable"]
    assert result["stable"] == pytest.approx((stable.video_completed > 0).mean())
    assert result["verdict"] == FAIL


def test_app_version_counts_when_release_is_absent(svc, analytics_store):
    at = START + dt.timedelta(minutes=1)
    load(
        analytics_store, [_row("video_rendered", "a", at, '{"$app_version": "video-renderer:v2"}')]
    )
    arms = store_metric_arms(
        SUCCESS, service=svc, canary_tag="v2", stable_tag="v1", start=START, end=END
    )
    assert arms["canary"].users == 1


def test_judge_without_store_for_edge_cases():
    metric = StoreMetric(name="m", min_users=2)
    empty = Arm(5, 0.0, 0.0, 5.0, 5.0, 0.0)
    result = store_metric_judge(metric, canary=empty, stable=empty, canary_share=50)
    assert result["verdict"] == NO_DATA and "no estimate" in result["why"]


@pytest.mark.parametrize(
    "data,field",
    [
        ({"name": "Bad Name"}, "name"),
        ({"name": "m", "query": "sum"}, "query"),
        ({"name": "m", "event": "bad event"}, "event"),
        ({"name": "m", "per_event": ""}, "per_event"),
        ({"name": "m", "direction": "up"}, "direction"),
        ({"name": "m", "alpha": 0.9}, "alpha"),
        ({"name": "m", "min_users": True}, "min_users"),
        ({"name": "m", "colour": "red"}, "colour"),
    ],
)
def test_bad_definitions_name_the_field(data, field):
    with pytest.raises(StoreMetricError) as caught:
        StoreMetric.from_dict(data)
    assert caught.value.field == field
