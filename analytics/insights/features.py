"""Per-user features and labels as one parameterized ClickHouse query at a reference date.

Point-in-time correct: every feature reads only events strictly before `ref`; every label
reads only events at or after `ref` (and before `ref + horizon`). Users who signed up before
`ref` are included; `active_in_window` says whether they were seen in the feature window.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from analytics.catalog import TIERS
from analytics.store import AnalyticsStore, store

DEFAULT_WINDOW_DAYS = 30
DEFAULT_HORIZON_DAYS = 30
DEFAULT_LTV_HORIZON_DAYS = 90
EXTRACT_TIMEOUT = 600.0

# What the models learn from, in this order (the SQL below computes every one).
FEATURES = (
    "sessions",
    "avg_session_seconds",
    "videos_created",
    "days_since_last_active",
    "avg_completion_rate",
    "active_days",
    "styles_used",
    "avg_video_seconds",
    "tier",
    "days_since_signup",
    "upgrades",
    "support_tickets",
    "last_satisfaction",
    "avg_satisfaction",
    "sessions_last_7d",
    "projects",
    "features_used",
    "revenue_window",
)
LABELS = ("churned", "revenue_next", "converted")

_FEATURES_SQL = """
WITH
    {ref:DateTime64(3)} AS ref,
    ref - toIntervalDay({window:UInt32}) AS win_start,
    ref + toIntervalDay({horizon:UInt32}) AS horizon_end,
    ref + toIntervalDay({ltv_horizon:UInt32}) AS ltv_end
SELECT
    user_id,
    countIf(event = 'session_start' AND in_win) AS sessions,
    avgIf(JSONExtractFloat(properties, 'duration_seconds'), event = 'session_end' AND in_win)
        AS avg_session_seconds,
    countIf(event = 'video_rendered' AND in_win) AS videos_created,
    dateDiff('second', maxIf(timestamp, before), ref) / 86400 AS days_since_last_active,
    avgIf(JSONExtractFloat(properties, 'completion_rate'), event = 'video_completed' AND in_win)
        AS avg_completion_rate,
    uniqExactIf(toDate(timestamp), in_win) AS active_days,
    uniqExactIf(video_style, event = 'video_completed' AND in_win) AS styles_used,
    avgIf(JSONExtractFloat(properties, 'video_duration_seconds'),
          event = 'video_completed' AND in_win) AS avg_video_seconds,
    indexOf(<tiers>, argMaxIf(user_tier, timestamp, before)) - 1 AS tier,
    dateDiff('second', minIf(timestamp, before), ref) / 86400 AS days_since_signup,
    countIf(event = 'subscription_upgraded' AND before) AS upgrades,
    countIf(event = 'support_ticket' AND in_win) AS support_tickets,
    argMaxIf(JSONExtractFloat(properties, 'score'), timestamp,
             event = 'satisfaction_score' AND before) AS last_satisfaction,
    avgIf(JSONExtractFloat(properties, 'score'), event = 'satisfaction_score' AND in_win)
        AS avg_satisfaction,
    countIf(event = 'session_start' AND timestamp >= ref - toIntervalDay(7) AND before)
        AS sessions_last_7d,
    countIf(event = 'project_created' AND in_win) AS projects,
    countIf(event = 'feature_used' AND in_win) AS features_used,
    sumIf(JSONExtractFloat(properties, 'amount'), event = 'payment' AND in_win) AS revenue_window,
    countIf(in_win) > 0 AS active_in_window,
    countIf(in_horizon) = 0 AS churned,
    sumIf(JSONExtractFloat(properties, 'amount'), event = 'payment' AND NOT before
          AND timestamp < ltv_end) AS revenue_next,
    countIf(event = 'subscription_started' AND in_horizon) > 0 AS converted
FROM (
    SELECT user_id, event, timestamp, properties, user_tier, video_style,
           timestamp < ref AS before,
           timestamp >= win_start AND before AS in_win,
           NOT before AND timestamp < horizon_end AS in_horizon
    FROM events FINAL
    WHERE timestamp < greatest(horizon_end, ltv_end) {user_filter}
)
GROUP BY user_id
HAVING minIf(timestamp, before) > toDateTime64('1970-01-02', 3)
ORDER BY user_id
"""


_SQL = _FEATURES_SQL.replace("<tiers>", "[" + ", ".join(f"'{t}'" for t in TIERS) + "]")


@dataclass(frozen=True)
class Snapshot:
    """Features (and labels, when the horizon has passed) of every user at `ref`."""

    ref: dt.datetime
    frame: object  # pandas DataFrame: user_id, FEATURES, active_in_window, LABELS

    def matrix(self) -> np.ndarray:
        return self.frame.loc[:, list(FEATURES)].to_numpy(dtype=float)


def snapshot(
    *,
    ref: dt.datetime,
    window_days: int = DEFAULT_WINDOW_DAYS,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    ltv_horizon_days: int = DEFAULT_LTV_HORIZON_DAYS,
    user_id: str | None = None,
    db: AnalyticsStore | None = None,
) -> Snapshot:
    """Features over [ref - window, ref) and labels over [ref, ref + horizon), per user.

    Labels: `churned` no event in [ref, ref + horizon); `converted` a subscription started in
    it; `revenue_next` payments in [ref, ref + ltv_horizon).
    """
    params = {
        "ref": ref.astimezone(dt.UTC).replace(tzinfo=None),
        "window": window_days,
        "horizon": horizon_days,
        "ltv_horizon": ltv_horizon_days,
    }
    user_filter = ""
    if user_id is not None:
        user_filter = "AND user_id = {user:String}"
        params["user"] = user_id
    frame = (db or store()).query_df(
        _SQL.replace("{user_filter}", user_filter), params, timeout=EXTRACT_TIMEOUT
    )
    return Snapshot(ref=ref, frame=_clean(frame))


def _clean(frame):
    """Types and the values an empty aggregate gives: averages of nothing become NaN → 0 or -1."""
    import pandas as pd

    if frame.empty:
        frame = pd.DataFrame(columns=["user_id", *FEATURES, "active_in_window", *LABELS])
    for name in (*FEATURES, "revenue_next"):
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
    for name in ("avg_session_seconds", "avg_completion_rate", "avg_video_seconds"):
        frame[name] = frame[name].fillna(0.0)
    for name in ("avg_satisfaction", "last_satisfaction"):  # 0: never rated
        frame[name] = frame[name].fillna(0.0)
    for name in ("active_in_window", "churned", "converted"):
        frame[name] = frame[name].astype(bool)
    frame["tier"] = frame["tier"].clip(lower=0)
    return frame.reset_index(drop=True)


def data_end(db: AnalyticsStore | None = None) -> dt.datetime | None:
    """The latest event's time (the natural 'now' of the data), or None for an empty store."""
    rows = (db or store()).query("SELECT max(timestamp) AS last, count() AS n FROM events")
    if not rows or not rows[0]["n"]:
        return None
    return dt.datetime.fromisoformat(str(rows[0]["last"])).replace(tzinfo=dt.UTC)
