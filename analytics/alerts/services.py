"""Every change to product-metric alerts, the check that moves an alert between ok and
firing (one episode per breach: it fires once and resolves once), and its chat notification.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from rest_framework import serializers

from analytics.alerts import selectors
from analytics.alerts.models import MetricAlert, MetricAlertCheck, MetricAlertEvent
from analytics.store.base import QueryTimeout, StoreError, StoreUnavailable
from core import chat
from core.errors import InvalidRequest, StateConflict, Unprocessable
from core.services import actor_label, audit_record

LETTERS = "ABCDEFGHIJ"
FIELDS = (
    "params", "series", "breakdown_value", "condition", "threshold", "running_period",
    "chat_destination", "enabled",
)  # fmt: skip


def check_definition(values: dict) -> dict:
    """The definition's fields as stored; InvalidRequest naming the first bad one."""
    from analytics.dashboards.services import tile_params_clean

    params = tile_params_clean(analysis="trends", params=values["params"])
    for key in ("compare", "date_from", "date_to"):  # an alert has its own range and comparison
        params.pop(key, None)
    values["params"] = params
    count = len(str(params["series"]).split(","))
    series = values["series"]
    if series == "formula":
        if not params.get("formula"):
            raise Unprocessable("series", "'formula' needs a formula in params")
    elif series not in LETTERS[:count]:
        raise Unprocessable("series", f"one of {', '.join(LETTERS[:count])} or 'formula'")
    if params.get("breakdown") and not values["breakdown_value"]:
        raise Unprocessable("breakdown_value", "with a breakdown, name the value to watch")
    if not params.get("breakdown"):
        values["breakdown_value"] = ""
    threshold = values["threshold"]
    if not isinstance(threshold, int | float) or not math.isfinite(threshold):
        raise InvalidRequest("threshold", "a finite number")
    if values["condition"] not in MetricAlert.Condition.values:
        raise InvalidRequest("condition", f"one of {', '.join(MetricAlert.Condition.values)}")
    if values["condition"] in ("increase", "decrease") and threshold <= 0:
        raise Unprocessable("threshold", "a percentage above 0 for a relative change")
    destination = values["chat_destination"]
    if destination and destination not in chat.destinations():
        known = ", ".join(chat.destinations()) or "none configured"
        raise Unprocessable("chat_destination", f"not an enabled chat webhook ({known})")
    return values


@transaction.atomic
def alert_create(
    *,
    name: str,
    params: Mapping[str, Any],
    condition: str,
    threshold: float,
    by,
    series: str = "A",
    breakdown_value: str = "",
    running_period: bool = False,
    chat_destination: str = "",
    enabled: bool = True,
) -> MetricAlert:
    name = name.strip()
    if not name:
        raise InvalidRequest("name", "1-100 characters")
    if MetricAlert.objects.filter(name=name).exists():
        raise StateConflict("name", f"an alert named {name!r} exists")
    values = check_definition(
        {
            "params": params,
            "series": series,
            "breakdown_value": breakdown_value,
            "condition": condition,
            "threshold": threshold,
            "running_period": running_period,
            "chat_destination": chat_destination,
            "enabled": enabled,
        }
    )
    alert = MetricAlert.objects.create(
        name=name, created_by=actor_label(by)[:200] if by else "", **values
    )
    audit_record(actor=by, action="metric_alert.create", target=alert, detail=describe(alert))
    return alert


@transaction.atomic
def alert_update(*, alert: MetricAlert, by, name: str | None = None, **changes) -> MetricAlert:
    """Change any of FIELDS; a changed definition starts over (state new: the next check
    decides, so an alert edited while firing does not resolve by itself)."""
    alert = MetricAlert.objects.select_for_update().get(pk=alert.pk)
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise InvalidRequest(sorted(unknown)[0], "not a field of an alert")
    if name is not None:
        name = name.strip()
        if not name or MetricAlert.objects.filter(name=name).exclude(pk=alert.pk).exists():
            raise InvalidRequest("name", "1-100 characters, not another alert's")
        alert.name = name
    values = check_definition({f: changes.get(f, getattr(alert, f)) for f in FIELDS})
    definition = ("params", "series", "breakdown_value", "condition", "threshold")
    redefined = any(values[f] != getattr(alert, f) for f in (*definition, "running_period"))
    for key, value in values.items():
        setattr(alert, key, value)
    if redefined:
        alert.state, alert.state_since = MetricAlert.State.NEW, timezone.now()
    alert.save()
    audit_record(actor=by, action="metric_alert.change", target=alert, detail=describe(alert))
    return alert


@transaction.atomic
def alert_delete(*, alert: MetricAlert, by) -> None:
    audit_record(actor=by, action="metric_alert.delete", target=alert, detail=alert.name)
    alert.delete()


def describe(alert: MetricAlert) -> str:
    series = ", ".join(str(alert.params.get("series", "")).split(","))
    what = f"{alert.params.get('math', 'total')} of {series}"
    if alert.series == "formula":
        what = f"formula {alert.params.get('formula')} over {series}"
    elif "," in series:
        what += f" (series {alert.series})"
    if alert.breakdown_value:
        what += f" where {alert.params.get('breakdown')} = {alert.breakdown_value!r}"
    period = alert.params.get("period") or "day"
    when = "this" if alert.running_period else "last complete"
    C = MetricAlert.Condition
    rule = {
        C.ABOVE: f"above {alert.threshold:g}",
        C.BELOW: f"below {alert.threshold:g}",
        C.INCREASE: f"up more than {alert.threshold:g} % on the {period} before",
        C.DECREASE: f"down more than {alert.threshold:g} % on the {period} before",
    }[alert.condition]
    return f"{what}, {when} {period}, {rule}"


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.6g}"


def alert_check(*, alert_id: int, today: dt.date | None = None) -> MetricAlertCheck:
    """Measure the alert's series, record the check, and fire (ok → firing) or resolve
    (firing → ok) once per change; a check that cannot run puts the alert in `error`.
    A store that does not answer raises (the task retries) and records nothing."""
    now = timezone.now()
    alert = MetricAlert.objects.get(pk=alert_id)
    error, m = "", None
    try:
        m = selectors.alert_measure(alert, today)
    except QueryTimeout as exc:
        error = f"the query took too long ({exc})"
    except StoreUnavailable:
        raise
    except (serializers.ValidationError, InvalidRequest, StoreError) as exc:
        error = _error_text(exc)
    with transaction.atomic():
        alert = MetricAlert.objects.select_for_update().get(pk=alert_id)
        hit = m is not None and selectors.breached(alert, m)
        check = MetricAlertCheck.objects.create(
            alert=alert,
            checked_at=now,
            period=m.period if m else None,
            value=m.value if m else None,
            previous=m.previous if m else None,
            change=m.change if m else None,
            breached=hit,
            error=error[:500],
        )
        alert.last_checked_at, alert.last_error = now, error[:500]
        if m is not None:
            alert.last_period, alert.last_value, alert.last_previous = m.period, m.value, m.previous
        state = MetricAlert.State
        new_state = state.ERROR if error else (state.FIRING if hit else state.OK)
        if new_state != alert.state:
            if new_state == state.FIRING:
                _episode(alert, MetricAlertEvent.Kind.FIRED, m, now)
            elif alert.state == state.FIRING and new_state == state.OK:
                _episode(alert, MetricAlertEvent.Kind.RESOLVED, m, now)
            alert.state, alert.state_since = new_state, now
        alert.save()
    return check


def _episode(alert: MetricAlert, kind: str, m, now) -> MetricAlertEvent:
    period = alert.params.get("period") or "day"
    head = "fired" if kind == MetricAlertEvent.Kind.FIRED else "resolved"
    change = "" if m.change is None else f" ({m.change * 100:+.1f} % on {_number(m.previous)})"
    message = (
        f"{alert.name} {head}: {_number(m.value)} for the {period} of {m.period}{change}; "
        f"rule: {describe(alert)}"
    )
    event = MetricAlertEvent.objects.create(
        alert=alert,
        kind=kind,
        at=now,
        period=m.period,
        value=m.value,
        previous=m.previous,
        message=message[:500],
        chat=MetricAlertEvent.Chat.PENDING
        if alert.chat_destination
        else MetricAlertEvent.Chat.NONE,
    )
    audit_record(actor=f"alert:{alert.name}"[:200], action=f"metric_alert.{head}", target=alert)
    if alert.chat_destination:
        from analytics.alerts.tasks import notify_metric_alert

        transaction.on_commit(lambda: notify_metric_alert.delay(event.pk))
    return event


def alert_url(alert: MetricAlert) -> str:
    path = reverse("analytics:metric-alert", args=[alert.pk])
    return f"{settings.CONSOLE_URL.rstrip('/')}{path}"


def alert_event_notify(*, event_id: int, final: bool = False) -> str:
    """Post one episode to its alert's chat destination; the chat state it ends in.
    Raises ChatDeliveryFailed for what may pass (the task retries) unless `final`."""
    event = MetricAlertEvent.objects.select_related("alert").get(pk=event_id)
    if event.chat != MetricAlertEvent.Chat.PENDING:
        return event.chat  # sent already (a task run twice) or nothing to send
    alert = event.alert
    fired = event.kind == MetricAlertEvent.Kind.FIRED
    message = chat.ChatMessage(
        severity="warning" if fired else "info",
        title=f"{alert.name} {'fired' if fired else 'resolved'}",
        text=event.message,
        url=alert_url(alert),
        fields={
            "alert": alert.name,
            "alert_id": alert.pk,
            "state": event.kind,
            "period": event.period.isoformat() if event.period else None,
            "value": event.value,
            "previous": event.previous,
            "condition": alert.condition,
            "threshold": alert.threshold,
        },
    )
    try:
        status = chat.send(alert.chat_destination, message)
    except chat.ChatDeliveryFailed as exc:
        if not final:
            raise
        outcome, detail = MetricAlertEvent.Chat.FAILED, f"gave up: {exc}"
    except chat.ChatUnavailable as exc:
        outcome, detail = MetricAlertEvent.Chat.FAILED, str(exc)
    else:
        if status is None:
            outcome, detail = MetricAlertEvent.Chat.FAILED, "the outbound guard refused the URL"
        elif 200 <= status < 300:
            outcome, detail = MetricAlertEvent.Chat.SENT, f"HTTP {status}"
        else:
            outcome, detail = MetricAlertEvent.Chat.FAILED, f"HTTP {status}"
    MetricAlertEvent.objects.filter(pk=event.pk).update(chat=outcome, chat_detail=detail[:200])
    return outcome


def alerts_check_all() -> int:
    from analytics.alerts.tasks import check_metric_alert

    ids = list(MetricAlert.objects.filter(enabled=True).values_list("pk", flat=True))
    for pk in ids:
        check_metric_alert.delay(pk)
    return len(ids)


def _error_text(exc: Exception) -> str:
    from analytics.dashboards.services import error_text

    return error_text(exc)
