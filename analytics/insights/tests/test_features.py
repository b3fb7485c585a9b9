"""Feature extraction: values cross-checked with pandas over the raw events; no leakage."""

import datetime as dt
import json
import uuid

import numpy as np
import pandas as pd
import pytest

from analytics.insights.features import FEATURES, data_end, snapshot
from analytics.insights.tests.conftest import ML_END

REF = ML_END - dt.timedelta(days=45)


@pytest.fixture(scope="module")
def raw(ml_history):
    from analytics.store import store

    frame = store().query_df(
        "SELECT user_id, event, timestamp, properties, user_tier FROM events FINAL"
    )
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    frame["props"] = frame["properties"].map(json.loads)
    return frame


def _pandas_features(raw: pd.DataFrame, ref: dt.datetime, window: int = 30) -> pd.DataFrame:
    """An independent computation of several features, straight from the raw rows."""
    ref = pd.Timestamp(ref)
    before = raw[raw["timestamp"] < ref]
    win = before[before["timestamp"] >= ref - pd.Timedelta(days=window)]
    out = pd.DataFrame(index=sorted(before["user_id"].unique()))
    out["sessions"] = win[win["event"] == "session_start"].groupby("user_id").size()
    out["videos_created"] = win[win["event"] == "video_rendered"].groupby("user_id").size()
    out["support_tickets"] = win[win["event"] == "support_ticket"].groupby("user_id").size()
    out["active_days"] = win.groupby("user_id")["timestamp"].agg(lambda s: s.dt.date.nunique())
    last = before.groupby("user_id")["timestamp"].max()
    out["days_since_last_active"] = (ref - last).dt.total_seconds() / 86400
    scores = before[before["event"] == "satisfaction_score"].sort_values("timestamp")
    out["last_satisfaction"] = scores.groupby("user_id")["props"].last().map(lambda p: p["score"])
    ends = win[win["event"] == "session_end"]
    out["avg_session_seconds"] = (
        ends.assign(d=ends["props"].map(lambda p: p["duration_seconds"]))
        .groupby("user_id")["d"]
        .mean()
    )
    after = raw[(raw["timestamp"] >= ref) & (raw["timestamp"] < ref + pd.Timedelta(days=30))]
    out["churned"] = ~out.index.isin(after["user_id"])
    return out.fillna(0)


def test_features_match_an_independent_pandas_computation(raw):
    snap = snapshot(ref=REF).frame.set_index("user_id")
    expected = _pandas_features(raw, REF)
    assert sorted(snap.index) == list(expected.index)
    for column in expected.columns:
        got = snap.loc[expected.index, column].astype(float).to_numpy()
        want = expected[column].astype(float).to_numpy()
        assert np.allclose(got, want, atol=1e-3), column


def test_features_ignore_everything_after_the_reference_date(ml_history):
    """Point-in-time: adding and removing events at or after ref changes labels, never features."""
    from analytics.store import store

    db = store()
    before = snapshot(ref=REF).frame.set_index("user_id")
    user = before.index[before["active_in_window"] & before["churned"]][0]
    future = [
        {
            "uuid": str(uuid.uuid4()),
            "event": name,
            "user_id": user,
            "timestamp": (REF + dt.timedelta(hours=h)).replace(tzinfo=None),
            "properties": json.dumps({"score": 1, "amount": 99.99, "duration_seconds": 9999}),
        }
        for h, name in [(0, "session_start"), (1, "satisfaction_score"), (2, "payment")]
    ]
    db.insert("events", future)
    try:
        after = snapshot(ref=REF).frame.set_index("user_id")
    finally:
        db.command(
            "DELETE FROM events WHERE user_id = {u:String} AND timestamp >= {ref:DateTime64(3)}",
            {"u": user, "ref": REF.replace(tzinfo=None)},
        )
    pd.testing.assert_frame_equal(after[list(FEATURES)], before[list(FEATURES)])
    assert before.loc[user, "churned"] and not after.loc[user, "churned"]
    assert after.loc[user, "revenue_next"] == before.loc[user, "revenue_next"] + 99.99


def test_labels_come_only_from_the_horizon(ml_history):
    snap = snapshot(ref=REF).frame
    # users who signed up after ref are not in the snapshot at all
    truth = pd.concat(ml_history.truth)
    late = set(truth.loc[truth["signup_at"] >= pd.Timestamp(REF), "user_id"])
    assert late and not late & set(snap["user_id"])
    # churn labels agree with the simulation: a user who churned (truth) before ref is churned
    gone = set(truth.loc[truth["churned_at"] < pd.Timestamp(REF), "user_id"]) & set(snap["user_id"])
    assert snap.set_index("user_id").loc[sorted(gone), "churned"].all()


def test_data_end_is_the_latest_event(ml_history):
    assert ML_END - dt.timedelta(days=1) < data_end() <= ML_END
