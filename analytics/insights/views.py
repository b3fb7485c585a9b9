"""Pages of the user insight models: Models, one user's insight, at-risk users (with CSV)."""

from django import forms
from django.http import Http404
from django.shortcuts import render

import charts
from analytics.catalog import TIERS
from analytics.insights import actions
from analytics.insights.features import FEATURES
from analytics.insights.scoring import user_insight
from analytics.insights.selectors import (
    AT_RISK_COLUMNS,
    at_risk_users,
    model_kinds,
    scored_users_count,
)
from analytics.product.pages import csv_response
from analytics.simulation import COUNTRIES
from analytics.store.base import StoreError
from core.roles import Role, has_role, role_required


def model_figures(version) -> dict:
    """A model version's validation figures: calibration (classifiers) and the permutation
    importance of its 12 strongest features."""
    figures = {}
    calibration = version.metrics.get("calibration")
    if calibration:
        figures["calibration"] = charts.figure(
            [
                {
                    "x": [0, 1],
                    "y": [0, 1],
                    "mode": "lines",
                    "name": "perfect",
                    "line": {"dash": "dot", "color": charts.NEUTRAL},
                },
                {
                    "x": calibration["mean_predicted"],
                    "y": calibration["fraction_positive"],
                    "mode": "lines+markers",
                    "name": f"v{version.version}",
                    "line": {"color": charts.color(0)},
                },
            ],
            title=f"Calibration (validation, v{version.version})",
            height=320,
            xaxis={"title": {"text": "mean predicted probability"}, "range": [0, 1]},
            yaxis={"title": {"text": "observed fraction"}, "range": [0, 1]},
        )
    strongest = list(version.metrics.get("feature_importances", {}).items())[:12][::-1]
    importance = charts.layout(
        title=f"Permutation importance (v{version.version})", height=320, showlegend=False
    )
    importance["margin"]["l"] = 150
    figures["importance"] = {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "x": [value for _name, value in strongest],
                "y": [name for name, _value in strongest],
                "marker": {"color": charts.color(0)},
            }
        ],
        "layout": importance,
    }
    return figures


@role_required()
def models_page(request):
    kinds = model_kinds()
    figures = {kind["kind"]: model_figures(kind["shown"]) for kind in kinds if kind["shown"]}
    return render(
        request,
        "analytics/models.html",
        {
            "kinds": kinds,
            "charts": figures,
            "can_retrain": has_role(request.user, Role.ENGINEER, Role.ADMIN),
        },
    )


@role_required()
def user_page(request, user_id: str):
    insight = user_insight(user_id[:200])
    if insight is None:
        raise Http404(f"no user {user_id!r} in the analytics store")
    features = [(name, insight["features"].get(name)) for name in FEATURES]
    return render(
        request,
        "analytics/user_insight.html",
        {"insight": insight, "features": features, "rules": actions.__doc__},
    )


class AtRiskFilters(forms.Form):
    tier = forms.ChoiceField(choices=[("", "any tier"), *[(t, t) for t in TIERS]], required=False)
    country = forms.ChoiceField(
        choices=[("", "any country"), *[(c, c) for c in COUNTRIES]], required=False
    )
    min_churn = forms.FloatField(min_value=0, max_value=1, required=False, initial=0.5)
    limit = forms.IntegerField(min_value=1, max_value=5000, required=False, initial=100)


@role_required()
def at_risk_page(request):
    form = AtRiskFilters(request.GET or None)
    params = {"tier": "", "country": "", "min_churn": 0.5, "limit": 100}
    if form.is_bound and form.is_valid():
        params.update(
            {key: value for key, value in form.cleaned_data.items() if value not in (None, "")}
        )
        params["tier"] = form.cleaned_data["tier"] or ""
        params["country"] = form.cleaned_data["country"] or ""
    try:
        rows = at_risk_users(**params) if not form.errors else []
        if request.GET.get("format") == "csv" and not form.errors:
            columns = [(column, column) for column in AT_RISK_COLUMNS]
            return csv_response("at-risk-users", columns, rows)
        scored = scored_users_count()
    except StoreError as exc:  # a timeout included: the page says so instead of a 500
        return render(
            request,
            "analytics/at_risk.html",
            {"form": form, "rows": [], "scored": 0, "store_error": str(exc)},
            status=503,
        )
    return render(
        request,
        "analytics/at_risk.html",
        {"form": form, "rows": rows, "scored": scored, "query": request.GET.urlencode()},
    )
