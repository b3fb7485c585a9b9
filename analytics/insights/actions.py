"""From model outputs to a user's insight: engagement score, next best action, defaults.

Engagement score (0-100), from the feature window (default 30 days):
    100 * (0.40 * min(active_days / 15, 1)
         + 0.25 * min(sessions / 20, 1)
         + 0.20 * min(videos_created / 5, 1)
         + 0.15 * max(0, 1 - days_since_last_active / 30))

Next best action, the first rule that matches:
1. `onboarding_nudge`     no event before the reference date (no history)
2. `win_back_offer`       churn probability >= 0.6 and paying (a discount to stay)
3. `re_engagement_email`  churn probability >= 0.6 and free
4. `support_outreach`     >= 2 support tickets in the window and last satisfaction <= 5
5. `upgrade_prompt`       free and conversion likelihood >= 0.3
6. `upsell_higher_tier`   basic or pro and engagement score >= 70
7. `no_action`

Users not seen in the feature window have already lapsed: churn probability 1.0. Paying users
have no conversion likelihood (null). Users with no history get DEFAULTS.
"""

from __future__ import annotations

import numpy as np

HIGH_CHURN = 0.6
HIGH_CONVERSION = 0.3
HIGH_ENGAGEMENT = 70.0
ACTIONS = (
    "onboarding_nudge",
    "win_back_offer",
    "re_engagement_email",
    "support_outreach",
    "upgrade_prompt",
    "upsell_higher_tier",
    "no_action",
)
DEFAULTS = {
    "churn_probability": 0.5,  # nothing known: even odds
    "ltv": 0.0,
    "conversion_likelihood": 0.0,
    "engagement_score": 0.0,
    "next_best_action": "onboarding_nudge",
}


def engagement_score(frame) -> np.ndarray:
    score = 100 * (
        0.40 * np.minimum(frame["active_days"] / 15, 1)
        + 0.25 * np.minimum(frame["sessions"] / 20, 1)
        + 0.20 * np.minimum(frame["videos_created"] / 5, 1)
        + 0.15 * np.maximum(0, 1 - frame["days_since_last_active"] / 30)
    )
    return np.round(score.to_numpy(dtype=float), 1)


def next_best_action(frame, churn, conversion, engagement) -> np.ndarray:
    tier = frame["tier"].to_numpy()
    paying = tier > 0
    conv = np.nan_to_num(conversion, nan=0.0)
    conditions = [
        (churn >= HIGH_CHURN) & paying,
        (churn >= HIGH_CHURN) & ~paying,
        (frame["support_tickets"].to_numpy() >= 2)
        & (frame["last_satisfaction"].to_numpy() <= 5)
        & (frame["last_satisfaction"].to_numpy() > 0),
        ~paying & (conv >= HIGH_CONVERSION),
        ((tier == 1) | (tier == 2)) & (engagement >= HIGH_ENGAGEMENT),
    ]
    return np.select(conditions, list(ACTIONS[1:6]), default="no_action")
