"""Operations pages: the alerts Alertmanager posted, what each did, and reverting an action."""

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from analytics.alerts.selectors import firing_alerts, recent_events
from core.roles import Role, role_required
from operations.models import Alert, AlertRule, PlatformSetting
from operations.services import AlertStateError, alert_action_revert

ALERT_STATUSES = ("firing", "resolved")


@role_required()
def alerts(request):
    """Alerts received from Alertmanager, the action each matched and how it went."""
    queryset = Alert.objects.select_related("rule")
    status = request.GET.get("status", "")
    if status in ALERT_STATUSES:
        queryset = queryset.filter(status=status)
    alertname = request.GET.get("alertname", "")
    if alertname:
        queryset = queryset.filter(alertname=alertname)
    page = Paginator(queryset, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "operations/alerts.html",
        {
            "page": page,
            "status": status,
            "alertname": alertname,
            "statuses": ALERT_STATUSES,
            "alertnames": Alert.objects.order_by("alertname")
            .values_list("alertname", flat=True)
            .distinct(),
            "rules": AlertRule.objects.all(),
            "settings_rows": PlatformSetting.objects.all(),
            "firing": Alert.objects.filter(status="firing").count(),
            "webhook_on": bool(settings.ALERT_WEBHOOK_TOKEN),
            "product_firing": firing_alerts(),
            "product_events": recent_events(limit=20),
        },
    )


@require_POST
@role_required(Role.ENGINEER)
def alert_revert(request, pk: int):
    alert = get_object_or_404(Alert, pk=pk)
    try:
        alert_action_revert(alert=alert, by=request.user)
    except AlertStateError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Reverted {alert.rule.setting_key} to {alert.previous_value}.")
    return redirect("alerts")
