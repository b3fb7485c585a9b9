"""Every product analysis by name, for what pins, filters or watches one (dashboards, cohort
filters, alerts): its parameters are the query string of its API and page, stored as a dict.

    analysis_result(name="trends", params={"series": "signup", "period": "week"})

A stored dict is validated again on every run (the same 400 naming the field as the API, as
a ValidationError), so a dashboard saved before an input changed fails clearly, not wrongly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.urls import reverse
from rest_framework import serializers

from analytics.product.common import UserFilter
from analytics.product.funnels import FUNNEL, funnel
from analytics.product.lifecycle import LIFECYCLE, STICKINESS, lifecycle, stickiness
from analytics.product.overview import OVERVIEW
from analytics.product.pages import Analysis
from analytics.product.paths import PATHS, paths
from analytics.product.retention import RETENTION
from analytics.product.revenue import REVENUE
from analytics.product.satisfaction import SATISFACTION
from analytics.product.trends import TRENDS, trends
from analytics.product.usage import USAGE
from core.errors import InvalidRequest


@dataclass(frozen=True)
class AnalysisSpec:
    name: str  # the registry key, stable: dashboards store it
    analysis: Analysis  # input class, compute and presenter of its page
    page: str  # URL names
    api: str
    # (validated input, user filter) -> result; None when the analysis takes no user filter
    filtered: Callable[[Any, UserFilter], dict] | None = None

    @property
    def title(self) -> str:
        return self.analysis.title

    @property
    def input_class(self) -> type[serializers.Serializer]:
        return self.analysis.input_class

    def page_url(self, params: Mapping[str, Any]) -> str:
        from urllib.parse import urlencode

        return reverse(self.page) + "?" + urlencode(params, doseq=True)


ANALYSES: dict[str, AnalysisSpec] = {
    spec.name: spec
    for spec in (
        AnalysisSpec(
            "trends",
            TRENDS,
            "analytics:trends",
            "analytics-trends",
            filtered=lambda data, users: trends(data.query(user_filter=users)),
        ),
        AnalysisSpec(
            "lifecycle",
            LIFECYCLE,
            "analytics:lifecycle",
            "analytics-lifecycle",
            filtered=lambda data, users: lifecycle(data.query(user_filter=users)),
        ),
        AnalysisSpec(
            "stickiness",
            STICKINESS,
            "analytics:stickiness",
            "analytics-stickiness",
            filtered=lambda data, users: stickiness(data.query(user_filter=users)),
        ),
        AnalysisSpec(
            "paths",
            PATHS,
            "analytics:paths",
            "analytics-paths",
            filtered=lambda data, users: paths(data.query(user_filter=users)),
        ),
        AnalysisSpec("overview", OVERVIEW, "analytics:overview", "analytics-overview"),
        AnalysisSpec("retention", RETENTION, "analytics:retention", "analytics-retention"),
        AnalysisSpec(
            "funnel",
            FUNNEL,
            "analytics:funnel",
            "analytics-funnel",
            filtered=lambda data, users: funnel(data.query(user_filter=users)),
        ),
        AnalysisSpec("revenue", REVENUE, "analytics:revenue", "analytics-revenue"),
        AnalysisSpec("feature_usage", USAGE, "analytics:feature-usage", "analytics-feature-usage"),
        AnalysisSpec(
            "satisfaction", SATISFACTION, "analytics:satisfaction", "analytics-satisfaction"
        ),
    )
}


def analysis_spec(name: str) -> AnalysisSpec:
    try:
        return ANALYSES[name]
    except KeyError:
        raise InvalidRequest("analysis", f"unknown; one of {', '.join(ANALYSES)}") from None


def analysis_input(*, name: str, params: Mapping[str, Any]):
    """The analysis' validated input (raises serializers.ValidationError naming the field)."""
    data = analysis_spec(name).input_class(data=dict(params))
    data.is_valid(raise_exception=True)
    return data


def analysis_result(
    *, name: str, params: Mapping[str, Any], user_filter: UserFilter | None = None
) -> dict:
    """The (cached) result of analysis `name` for `params`, kept to `user_filter`'s users."""
    spec = analysis_spec(name)
    data = analysis_input(name=name, params=params)
    if user_filter is None:
        return spec.analysis.compute(data)
    if spec.filtered is None:
        raise InvalidRequest("cohort", f"{spec.title} cannot be filtered by users yet")
    return spec.filtered(data, user_filter)
