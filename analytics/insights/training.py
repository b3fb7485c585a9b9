"""Training and validating the insight models on a time-based split.

Snapshots (features before a reference date, labels after it) are taken at several dates.
The validation snapshot is the latest one whose label horizon has fully passed (`end -
horizon`); the training snapshots are earlier, spaced `STEP_DAYS` apart, and their label
horizons end no later than the validation date, so no training label sees the validation
period. The validated model is the one served (it is not refitted on the validation rows).

- churn: users seen in the feature window; label: no event in the next `ML_HORIZON_DAYS`.
  Histogram gradient boosting fitted on the older training snapshots, isotonic-calibrated on
  the latest training snapshot (a time-ordered calibration set).
- conversion: free users seen in the window; label: a subscription started in the horizon.
  Same model family.
- ltv: users seen in the window; target: payments in the next `ML_LTV_HORIZON_DAYS`
  (gradient boosting with a Poisson loss: revenue is non-negative).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from analytics.insights.features import FEATURES, snapshot
from analytics.store import AnalyticsStore

TRAIN_SNAPSHOTS = 3
STEP_DAYS = 14
MIN_ROWS = 50
IMPORTANCE_ROWS = 1_000
SEED = 0

# the metric activation compares, and whether higher is better
VALIDATION_METRIC = {
    "churn": ("roc_auc", True),
    "conversion": ("roc_auc", True),
    "ltv": ("mae", False),
}


class NotEnoughData(Exception):
    """Too few users or only one class in a snapshot: nothing sensible to train."""


@dataclass
class Trained:
    kind: str
    model: object
    metrics: dict
    reference_at: dt.datetime
    train_rows: int
    validation_rows: int
    window_days: int
    horizon_days: int


def horizon_for(kind: str, *, horizon_days: int, ltv_horizon_days: int) -> int:
    return ltv_horizon_days if kind == "ltv" else horizon_days


def population(kind: str, frame):
    """The rows a kind learns from and is scored on (see the module docstring)."""
    rows = frame[frame["active_in_window"]]
    if kind == "conversion":
        rows = rows[rows["tier"] == 0]
    return rows


def target(kind: str, rows) -> np.ndarray:
    column = {"churn": "churned", "conversion": "converted", "ltv": "revenue_next"}[kind]
    return rows[column].to_numpy(dtype=float)


def fit_model(kind: str, fit_x, fit_y, cal_x, cal_y):
    """Gradient boosting on the older snapshots; classifiers are then isotonic-calibrated on
    the latest training snapshot (a time-ordered hold-out: one boosting fit, not k)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.frozen import FrozenEstimator

    if kind == "ltv":
        model = HistGradientBoostingRegressor(
            loss="poisson", max_iter=200, learning_rate=0.08, random_state=SEED
        )
        return model.fit(np.vstack([fit_x, cal_x]), np.concatenate([fit_y, cal_y]))
    booster = HistGradientBoostingClassifier(
        max_iter=100,
        learning_rate=0.08,
        max_leaf_nodes=31,
        l2_regularization=1.0,
        random_state=SEED,
    ).fit(fit_x, fit_y)
    return CalibratedClassifierCV(FrozenEstimator(booster), method="isotonic").fit(cal_x, cal_y)


def train(
    kind: str,
    *,
    end: dt.datetime,
    window_days: int,
    horizon_days: int,
    ltv_horizon_days: int,
    db: AnalyticsStore | None = None,
    stage: Callable[[str, int], None] = lambda name, percent: None,
) -> Trained:
    """Extract snapshots, fit on the earlier ones, validate on the latest; metrics included."""
    import pandas as pd

    horizon = horizon_for(kind, horizon_days=horizon_days, ltv_horizon_days=ltv_horizon_days)
    valid_ref = end - dt.timedelta(days=horizon)
    train_refs = [
        valid_ref - dt.timedelta(days=horizon + i * STEP_DAYS) for i in range(TRAIN_SNAPSHOTS)
    ]
    kwargs = {
        "window_days": window_days,
        "horizon_days": horizon_days,
        "ltv_horizon_days": ltv_horizon_days,
        "db": db,
    }
    frames = []
    for i, ref in enumerate([valid_ref, *train_refs]):
        stage("extracting", 5 + 35 * i // (TRAIN_SNAPSHOTS + 1))
        frames.append(population(kind, snapshot(ref=ref, **kwargs).frame))
    valid, train_rows = frames[0], pd.concat(frames[1:], ignore_index=True)
    x_train, y = train_rows[list(FEATURES)].to_numpy(float), target(kind, train_rows)
    x_valid, yv = valid[list(FEATURES)].to_numpy(float), target(kind, valid)
    _check(kind, y, yv)
    stage("training", 45)
    older = pd.concat(frames[2:], ignore_index=True)
    model = fit_model(
        kind,
        older[list(FEATURES)].to_numpy(float),
        target(kind, older),
        frames[1][list(FEATURES)].to_numpy(float),
        target(kind, frames[1]),
    )
    stage("validating", 75)
    metrics = evaluate(kind, model, x_train, y, x_valid, yv)
    return Trained(
        kind=kind,
        model=model,
        metrics=metrics,
        reference_at=valid_ref,
        train_rows=len(y),
        validation_rows=len(yv),
        window_days=window_days,
        horizon_days=horizon,
    )


def _check(kind: str, y: np.ndarray, yv: np.ndarray) -> None:
    if len(y) < MIN_ROWS or len(yv) < MIN_ROWS:
        raise NotEnoughData(
            f"{kind}: {len(y)} training and {len(yv)} validation rows (need {MIN_ROWS} each)"
        )
    if kind != "ltv" and (len(np.unique(y)) < 2 or len(np.unique(yv)) < 2):
        raise NotEnoughData(f"{kind}: a snapshot has only one class")


def predict(kind: str, model, x: np.ndarray) -> np.ndarray:
    if kind == "ltv":
        return np.clip(model.predict(x), 0.0, None)
    return model.predict_proba(x)[:, 1]


def evaluate(kind, model, x_train, y, x_valid, yv) -> dict:
    """Validation metrics, baselines measured on the same split, and feature importances."""
    from sklearn.inspection import permutation_importance

    pred = predict(kind, model, x_valid)
    metrics = (
        _regression_metrics(y, yv, pred)
        if kind == "ltv"
        else _classification_metrics(x_train, y, x_valid, yv, pred)
    )
    rng = np.random.default_rng(SEED)
    idx = rng.choice(len(yv), min(len(yv), IMPORTANCE_ROWS), replace=False)
    scoring = "neg_mean_absolute_error" if kind == "ltv" else "roc_auc"
    if kind != "ltv" and len(np.unique(yv[idx])) < 2:
        idx = np.arange(len(yv))
    imp = permutation_importance(
        model, x_valid[idx], yv[idx], scoring=scoring, n_repeats=2, random_state=SEED
    )
    metrics["feature_importances"] = dict(
        sorted(
            (
                (name, round(float(v), 5))
                for name, v in zip(FEATURES, imp.importances_mean, strict=True)
            ),
            key=lambda item: -item[1],
        )
    )
    return metrics


def _classification_metrics(x_train, y, x_valid, yv, prob) -> dict:
    from sklearn.calibration import calibration_curve
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frac_pos, mean_pred = calibration_curve(yv, prob, n_bins=10, strategy="quantile")
    bins = np.clip(np.searchsorted(np.quantile(prob, np.linspace(0, 1, 11))[1:-1], prob), 0, 9)
    ece = sum(
        abs(prob[bins == b].mean() - yv[bins == b].mean()) * (bins == b).mean()
        for b in range(10)
        if (bins == b).any()
    )
    majority = float(np.mean(y) >= 0.5)
    logistic = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    logistic.fit(x_train, y)
    lprob = logistic.predict_proba(x_valid)[:, 1]
    return {
        "roc_auc": round(float(roc_auc_score(yv, prob)), 4),
        "pr_auc": round(float(average_precision_score(yv, prob)), 4),
        "brier": round(float(brier_score_loss(yv, prob)), 4),
        "calibration_error": round(float(ece), 4),
        "calibration": {
            "mean_predicted": [round(float(v), 4) for v in mean_pred],
            "fraction_positive": [round(float(v), 4) for v in frac_pos],
        },
        "positive_rate": round(float(np.mean(yv)), 4),
        "train_positive_rate": round(float(np.mean(y)), 4),
        "baselines": {
            "majority_class": {
                "roc_auc": 0.5,  # a constant score ranks nothing
                "brier": round(float(brier_score_loss(yv, np.full(len(yv), majority))), 4),
            },
            "logistic_regression": {
                "roc_auc": round(float(roc_auc_score(yv, lprob)), 4),
                "brier": round(float(brier_score_loss(yv, lprob)), 4),
            },
        },
    }


def _regression_metrics(y, yv, pred) -> dict:
    from sklearn.metrics import mean_absolute_error, r2_score

    mean = np.full(len(yv), float(np.mean(y)))
    return {
        "mae": round(float(mean_absolute_error(yv, pred)), 4),
        "r2": round(float(r2_score(yv, pred)), 4),
        "mean_target": round(float(np.mean(yv)), 4),
        "baselines": {
            "training_mean": {
                "mae": round(float(mean_absolute_error(yv, mean)), 4),
                "r2": round(float(r2_score(yv, mean)), 4),
            }
        },
    }


def should_activate(
    kind: str, new: dict, active: dict | None, *, margin: float
) -> tuple[bool, str]:
    """A new version is activated unless it is worse than the active one by more than `margin`.

    AUC: absolute points (0.02 = two points); MAE: relative (0.02 = 2 % higher error).
    """
    name, higher_better = VALIDATION_METRIC[kind]
    if not active or name not in active:
        return True, "first version of this kind"
    new_value, old_value = new[name], active[name]
    limit = old_value - margin if higher_better else old_value * (1 + margin)
    ok = new_value >= limit if higher_better else new_value <= limit
    verdict = "within" if ok else "worse than"
    return ok, f"{name} {new_value:.4f} vs active {old_value:.4f}: {verdict} the margin {margin}"
