"""Pages of the devices area: devices over time, search by user, a device's delivery history."""

import json
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from core.errors import DomainError
from core.roles import Role, role_required
from devices import charts, selectors, services
from devices.models import DeactivationReason, Device, Platform


@role_required()
def index(request):
    filters = {
        "user_id": request.GET.get("user_id", "").strip()[:64],
        "platform": request.GET.get("platform", "")
        if request.GET.get("platform") in Platform.values
        else "",
        "active": request.GET.get("active", "")
        if request.GET.get("active") in ("yes", "no")
        else "",
    }
    summary = selectors.devices_summary()
    context = {"summary": summary, "filters": filters, "platforms": Platform.choices}
    if summary.active or summary.inactive:
        context["platforms_chart"] = charts.platforms_figure(
            selectors.active_devices_over_time(by="platform")
        )
        context["versions_chart"] = charts.versions_figure(
            selectors.active_devices_over_time(by="app_version")
        )
        page = Paginator(selectors.device_search(**filters), 25).get_page(request.GET.get("page"))
        context["page"] = page
        context["notifications"] = selectors.recent_notifications(limit=10)
        context["query"] = urlencode({k: v for k, v in filters.items() if v})
    context["push_backend"] = settings.PUSH_BACKEND
    context["deliveries_total"] = sum(summary.deliveries_by_status.values())
    return render(request, "devices/index.html", context)


@role_required()
def device_detail(request, pk: int):
    device = get_object_or_404(Device, pk=pk)
    page = Paginator(selectors.device_deliveries(device=device), 50).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "devices/device_detail.html",
        {"device": device, "page": page, "links": device.links.all()[:20]},
    )


@role_required(Role.ENGINEER)
@require_POST
def device_deactivate(request, pk: int):
    device = get_object_or_404(Device, pk=pk)
    reason = request.POST.get("detail", "").strip()[:300] or "deactivated from the console"
    if not device.is_active:
        messages.warning(request, "This device was already inactive.")
    else:
        services.device_deactivate(
            device=device, reason=DeactivationReason.STAFF, detail=reason, by=request.user
        )
        messages.success(request, "Device deactivated: it receives no more notifications.")
    return redirect("devices:device", pk=pk)


@role_required(Role.ENGINEER)
@require_POST
def device_send_test(request, pk: int):
    device = get_object_or_404(Device, pk=pk)
    try:
        notification = services.notification_send_test(device=device, by=request.user)
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"Test notification #{notification.pk} queued; its delivery appears below "
            "once a worker has sent it (reload).",
        )
    return redirect("devices:device", pk=pk)


@role_required()
def notification_detail(request, pk: int):
    notification = get_object_or_404(selectors.notification_with_deliveries(), pk=pk)
    data = json.dumps(notification.data, ensure_ascii=False, indent=1)
    return render(
        request, "devices/notification_detail.html", {"notification": notification, "data": data}
    )
