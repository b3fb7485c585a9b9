"""Pages of product-metric alerts: the list with the create form (prefilled from a trends
page's "Alert on this trend"), and one alert with its checks, episodes and chart."""

from __future__ import annotations

from urllib.parse import parse_qs

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render

import charts
from analytics.alerts import services
from analytics.alerts.models import MetricAlert
from analytics.product.registry import ANALYSES
from core import chat
from core.errors import InvalidRequest
from core.roles import Role, has_role, role_required

EXAMPLE = "series=video_rendered&math=unique_users&period=week"
HISTORY = 200


def _can_edit(request) -> bool:
    return has_role(request.user, Role.PRODUCT, Role.ADMIN)


def parse_params(text: str) -> dict:
    """A trends query string (or a whole trends URL) as stored parameters."""
    text = text.strip()
    if "?" in text:
        text = text.split("?", 1)[1]
    params = {}
    for key, values in parse_qs(text, keep_blank_values=False).items():
        params[key] = values if len(values) > 1 else values[0]
    if not params:
        raise InvalidRequest("params", f"a trends query string, e.g. {EXAMPLE}")
    return params


def _float(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        raise InvalidRequest("threshold", "a number") from None


@role_required()
def alerts_page(request):
    form = {
        "name": "",
        "params": request.GET.get("params", EXAMPLE),
        "series": "A",
        "breakdown_value": "",
        "condition": "decrease",
        "threshold": "20",
        "running_period": "",
        "chat_destination": "",
    }
    errors: dict[str, str] = {}
    if request.method == "POST":
        if not _can_edit(request):
            raise PermissionDenied("needs the role product or admin")
        form.update({k: request.POST.get(k, "") for k in form})
        try:
            alert = services.alert_create(
                name=form["name"][:100],
                params=parse_params(form["params"]),
                series=form["series"].strip() or "A",
                breakdown_value=form["breakdown_value"].strip()[:200],
                condition=form["condition"],
                threshold=_float(form["threshold"]),
                running_period=bool(form["running_period"]),
                chat_destination=form["chat_destination"],
                by=request.user,
            )
        except InvalidRequest as exc:
            errors[exc.field.split(".")[0]] = str(exc)
        else:
            messages.success(request, f"Alert {alert.name!r} saved; it is checked on schedule.")
            return redirect("analytics:metric-alert", pk=alert.pk)
    alerts = [(a, services.describe(a)) for a in MetricAlert.objects.all()]
    context = {
        "alerts": alerts,
        "form": form,
        "errors": errors,
        "conditions": MetricAlert.Condition.choices,
        "destinations": chat.destinations(),
        "can_edit": _can_edit(request),
        "active": "metric_alerts",
    }
    return render(request, "alerts/index.html", context, status=400 if errors else 200)


@role_required()
def alert_page(request, pk: int):
    alert = get_object_or_404(MetricAlert, pk=pk)
    if request.method == "POST":
        if not _can_edit(request):
            raise PermissionDenied("needs the role product or admin")
        action = request.POST.get("action")
        if action == "delete":
            services.alert_delete(alert=alert, by=request.user)
            messages.success(request, f"Alert {alert.name!r} deleted.")
            return redirect("analytics:metric-alerts")
        if action == "check":
            from analytics.alerts.tasks import check_metric_alert

            check_metric_alert.delay(alert.pk)
            messages.success(request, "A check is queued; reload in a moment.")
        elif action in ("enable", "disable"):
            services.alert_update(alert=alert, enabled=action == "enable", by=request.user)
        return redirect("analytics:metric-alert", pk=alert.pk)
    checks = list(alert.checks.all()[:HISTORY])
    # the latest check of each period measured, oldest period first
    latest = {}
    for c in checks:
        if c.value is not None and c.period is not None:
            latest.setdefault(c.period, c)
    points = [latest[p] for p in sorted(latest)]
    chart = []
    if points:
        traces = [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "value",
                "x": [c.period.isoformat() for c in points],
                "y": [c.value for c in points],
                "line": {"color": charts.color(0)},
                "marker": {"color": [charts.color(3 if c.breached else 0) for c in points]},
            }
        ]
        layout = {"yaxis": {"title": {"text": "value"}}}
        if not alert.relative:
            layout["shapes"] = [
                {
                    "type": "line",
                    "xref": "paper",
                    "x0": 0,
                    "x1": 1,
                    "y0": alert.threshold,
                    "y1": alert.threshold,
                    "line": {"dash": "dash", "color": charts.NEGATIVE},
                }
            ]
        chart.append(
            {
                "id": "alert-values",
                "figure": charts.figure(
                    traces,
                    title="Value of each period checked (red: breached)",
                    height=280,
                    **layout,
                ),
            }
        )
    trend_url = ANALYSES["trends"].page_url(alert.params)
    context = {
        "alert": alert,
        "text": services.describe(alert),
        "checks": checks[:50],
        "events": alert.events.all()[:50],
        "charts": chart,
        "trend_url": trend_url,
        "can_edit": _can_edit(request),
        "active": "metric_alerts",
    }
    return render(request, "alerts/detail.html", context)
