"""Pages of the devices area: devices over time, search by user, a device's delivery history."""

import json
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from core import audiences
from core.errors import DomainError, InvalidRequest
from core.roles import Role, has_role, role_required
from devices import charts, selectors, services
from devices.broadcasts import OPEN_EVENT, broadcast_create, broadcast_send, broadcast_stats
from devices.models import Broadcast, DeactivationReason, Device, Platform


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


@role_required()
def broadcasts(request):
    """Push broadcasts to saved cohorts: the list and the create form."""

    can_send = has_role(request.user, Role.PRODUCT, Role.ADMIN)
    form = {"name": "", "cohort_id": "", "title": "", "body": ""}
    error = ""
    if request.method == "POST":
        if not can_send:
            raise PermissionDenied("needs the role product or admin")
        form.update({k: request.POST.get(k, "").strip() for k in form})
        try:
            cohort = int(form["cohort_id"]) if form["cohort_id"].isdigit() else 0
            broadcast = broadcast_create(
                name=form["name"],
                cohort_id=cohort,
                title=form["title"],
                body=form["body"],
                by=request.user,
            )
        except InvalidRequest as exc:
            error = str(exc)
        else:
            if request.POST.get("send"):
                broadcast_send(broadcast=broadcast, by=request.user)
            return redirect("devices:broadcast", pk=broadcast.pk)
    rows = [(b, broadcast_stats(b)) for b in Broadcast.objects.all()[:100]]
    context = {
        "rows": rows,
        "form": form,
        "error": error,
        "cohorts": audiences.choices(),
        "can_send": can_send,
        "cap": settings.PUSH_BROADCAST_CAP,
    }
    return render(request, "devices/broadcasts.html", context, status=400 if error else 200)


@role_required()
def broadcast_detail(request, pk: int):

    broadcast = get_object_or_404(Broadcast, pk=pk)
    can_send = has_role(request.user, Role.PRODUCT, Role.ADMIN)
    if request.method == "POST":
        if not can_send:
            raise PermissionDenied("needs the role product or admin")
        broadcast_send(broadcast=broadcast, by=request.user)
        return redirect("devices:broadcast", pk=broadcast.pk)
    stats = broadcast_stats(broadcast)
    context = {
        "b": broadcast,
        "stats": stats,
        "percent": round(stats["progress"] * 100),
        "can_send": can_send,
        "open_event": OPEN_EVENT,
    }
    return render(request, "devices/broadcast_detail.html", context)
