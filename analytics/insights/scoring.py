"""Batch scoring into the store's `user_insights` table, and one user's insight on demand.

Every scored row is also copied into the Redis cache (`INSIGHTS_CACHE_SECONDS`), so a single
user's insight is one Redis read; the store's table stays the source, read on a cache miss.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
from django.conf import settings
from django.core.cache import cache
from threadpoolctl import threadpool_limits

from analytics.insights import actions
from analytics.insights.features import FEATURES, Snapshot, data_end, snapshot
from analytics.insights.registry import active_versions, load_model
from analytics.insights.training import predict
from analytics.store import AnalyticsStore, store
from analytics.store.base import digest

SCORE_BATCH = 50_000
CACHE_BATCH = 5_000


def insight_cache_key(db: AnalyticsStore, user_id: str) -> str:
    # Per store, so a benchmark's scratch store never answers for the real one.
    return f"insight:{db.identity}:{digest(user_id)}"


def cache_insights(db: AnalyticsStore, rows: list[dict]) -> None:
    """Copy scored insights (as the API answers them) into the cache, in pipelined batches."""
    for start in range(0, len(rows), CACHE_BATCH):
        cache.set_many(
            {insight_cache_key(db, r["user_id"]): r for r in rows[start : start + CACHE_BATCH]},
            timeout=settings.INSIGHTS_CACHE_SECONDS,
        )


def models_of(versions: dict) -> dict:
    """Loaded models by kind, from ModelVersion rows by kind."""
    return {kind: load_model(version) for kind, version in versions.items()}


def score_frame(snap: Snapshot, models: dict) -> object:
    """Predictions and actions for every row of a snapshot, with the given models by kind."""
    import pandas as pd

    frame = snap.frame
    n = len(frame)
    x = frame[list(FEATURES)].to_numpy(float)
    active = frame["active_in_window"].to_numpy(bool)
    paying = frame["tier"].to_numpy() > 0

    def model_output(kind: str, default: float) -> np.ndarray:
        if kind not in models or not n:
            return np.full(n, default)
        with threadpool_limits(limits=settings.ML_THREADS):
            return predict(kind, models[kind], x)

    churn = np.where(active, model_output("churn", actions.DEFAULTS["churn_probability"]), 1.0)
    conversion = np.where(
        paying, np.nan, model_output("conversion", actions.DEFAULTS["conversion_likelihood"])
    )
    ltv = np.where(active, model_output("ltv", 0.0), 0.0)
    engagement = actions.engagement_score(frame)
    action = actions.next_best_action(frame, churn, conversion, engagement)
    return pd.DataFrame(
        {
            "user_id": frame["user_id"].to_numpy(),
            "churn_probability": np.round(churn, 4),
            "ltv": np.round(ltv, 2),
            "conversion_likelihood": np.round(conversion, 4),
            "engagement_score": engagement,
            "next_best_action": action,
        }
    )


def _version_map(versions: dict) -> dict:
    return {kind: v.version for kind, v in sorted(versions.items())}


def score_all(
    *,
    db: AnalyticsStore | None = None,
    ref: dt.datetime | None = None,
    models: dict | None = None,
    versions: dict | None = None,
) -> int:
    """Score every user as of `ref` (default: the latest event) into `user_insights`.

    Uses the active versions unless `models` (loaded, by kind) and `versions` (numbers) are given.
    """
    db = db or store()
    ref = ref or data_end(db)
    if ref is None:
        return 0
    if models is None:
        active = active_versions()
        models, versions = models_of(active), _version_map(active)
    snap = snapshot(
        ref=ref + dt.timedelta(milliseconds=1),  # the latest event is history, not future
        window_days=settings.ML_WINDOW_DAYS,
        db=db,
    )
    scored = score_frame(snap, models)
    if scored.empty:
        return 0
    dims = db.query_df("SELECT user_id, tier, country FROM users FINAL")
    scored = scored.merge(dims, on="user_id", how="left").fillna({"tier": "", "country": ""})
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="milliseconds")
    scored["computed_at"] = now
    scored["reference_at"] = ref.replace(tzinfo=None).isoformat(sep=" ", timespec="milliseconds")
    scored["model_versions"] = json.dumps(versions or {})
    features = snap.frame[list(FEATURES)].round(3)
    scored["features"] = [
        json.dumps(dict(zip(FEATURES, row, strict=True))) for row in features.to_numpy().tolist()
    ]
    for start in range(0, len(scored), SCORE_BATCH):
        chunk = scored.iloc[start : start + SCORE_BATCH]
        db.insert_json_each_row(
            "user_insights", chunk.to_json(orient="records", lines=True).encode()
        )
    # The cached copy is what the API reads: the same fields as a row read back from the table.
    cached = scored.drop(columns=["tier", "country", "reference_at"])
    cached["conversion_likelihood"] = cached["conversion_likelihood"].astype(object)
    cached.loc[cached["conversion_likelihood"].isna(), "conversion_likelihood"] = None
    cache_insights(db, [_insight_row(r) for r in cached.to_dict("records")])
    return len(scored)


INSIGHT_SQL = """
SELECT user_id, churn_probability, ltv, conversion_likelihood, engagement_score,
       next_best_action, model_versions, computed_at, reference_at, tier, country, features
FROM user_insights FINAL WHERE user_id = {user:String} LIMIT 1
"""


def _insight_row(row: dict) -> dict:
    return {
        "user_id": row["user_id"],
        "churn_probability": row["churn_probability"],
        "ltv": row["ltv"],
        "conversion_likelihood": row["conversion_likelihood"],
        "engagement_score": row["engagement_score"],
        "next_best_action": row["next_best_action"],
        "model_versions": json.loads(row["model_versions"]) if row["model_versions"] else {},
        "computed_at": _iso(row["computed_at"]),
        "source": row.get("source", "scored"),
        "features": json.loads(row["features"]) if row.get("features") else {},
    }


def _iso(value) -> str:
    return dt.datetime.fromisoformat(str(value)).replace(tzinfo=dt.UTC).isoformat()


def user_insight(user_id: str, *, db: AnalyticsStore | None = None) -> dict | None:
    """The scored insight; else computed on demand; defaults without history; None if unknown."""
    db = db or store()
    key = insight_cache_key(db, user_id)
    cached = cache.get(key)
    if cached is not None:
        return cached
    with db.session():
        rows = db.query(INSIGHT_SQL, {"user": user_id})
        if rows:
            insight = _insight_row(rows[0])
            cache.set(key, insight, timeout=settings.INSIGHTS_CACHE_SECONDS)
            return insight
        known = db.query(
            "SELECT 1 AS found FROM users WHERE user_id = {user:String} LIMIT 1", {"user": user_id}
        ) or db.query(
            "SELECT 1 AS found FROM events WHERE user_id = {user:String} LIMIT 1", {"user": user_id}
        )
        if not known:
            return None
        ref = data_end(db) or dt.datetime.now(dt.UTC)
        snap = snapshot(
            ref=ref + dt.timedelta(milliseconds=1),
            window_days=settings.ML_WINDOW_DAYS,
            user_id=user_id,
            db=db,
        )
    now = dt.datetime.now(dt.UTC).isoformat()
    if snap.frame.empty:  # known (e.g. in the users dimension) but no event yet
        return {
            "user_id": user_id,
            **actions.DEFAULTS,
            "model_versions": {},
            "computed_at": now,
            "source": "defaults",
            "features": {},
        }
    versions = active_versions()
    scored = score_frame(snap, models_of(versions)).iloc[0].to_dict()
    conversion = scored["conversion_likelihood"]
    features = snap.frame[list(FEATURES)].round(3).iloc[0].to_dict()
    return {
        **scored,
        "conversion_likelihood": None if np.isnan(conversion) else float(conversion),
        "model_versions": _version_map(versions),
        "computed_at": now,
        "source": "on_demand",
        "features": {k: float(v) for k, v in features.items()},
    }
