"""Reads of the insight models: the registry per kind, at-risk users, how many are scored."""

from __future__ import annotations

from django.conf import settings

from analytics.insights.models import ModelKind, ModelVersion, TrainingRun
from analytics.insights.registry import KINDS
from analytics.store import store

AT_RISK_COLUMNS = [
    "user_id", "churn_probability", "ltv", "conversion_likelihood", "engagement_score",
    "next_best_action", "tier", "country", "computed_at",
]  # fmt: skip

AT_RISK_SQL = f"""
SELECT {", ".join(AT_RISK_COLUMNS)}
FROM user_insights FINAL
WHERE churn_probability >= {{min_churn:Float64}}
  AND ({{tier:String}} = '' OR tier = {{tier:String}})
  AND ({{country:String}} = '' OR country = {{country:String}})
  AND churn_probability < 1
ORDER BY churn_probability DESC, ltv DESC, user_id
LIMIT {{limit:UInt32}}
"""


def at_risk_users(*, tier: str, country: str, min_churn: float, limit: int) -> list[dict]:
    """Scored users most likely to churn first ('' tier or country: any)."""
    return store().query(
        AT_RISK_SQL,
        {"tier": tier, "country": country, "min_churn": min_churn, "limit": limit},
        timeout=settings.ANALYTICS_QUERY_TIMEOUT,
    )


def scored_users_count() -> int:
    return store().query(
        "SELECT count() AS n FROM user_insights", timeout=settings.ANALYTICS_QUERY_TIMEOUT
    )[0]["n"]


def model_kinds() -> list[dict]:
    """Per kind: its latest 10 versions, the one to show (active, else newest), the last run."""
    kinds = []
    for kind in KINDS:
        versions = list(ModelVersion.objects.filter(kind=kind).order_by("-version")[:10])
        shown = next((v for v in versions if v.is_active), versions[0] if versions else None)
        kinds.append(
            {
                "kind": kind,
                "label": ModelKind(kind).label,
                "versions": versions,
                "shown": shown,
                "run": TrainingRun.objects.filter(kind=kind).first(),
            }
        )
    return kinds
