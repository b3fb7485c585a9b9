"""Rollout notifications to chat: which timeline events notify, at what severity, to which
alert providers, and the message each kind of provider receives.

Sending happens in a task per (event, provider), through the outbound guard, with retries of
what may pass; a provider that refuses for good is logged and not retried.
"""

from django.conf import settings
from django.db.models import Q

from core import chat, outbound
from deployments.models import SEVERITY_RANK, AlertProvider, RolloutEvent, Severity

# Timeline event kinds that notify (Argo's on-rollout-* triggers, Flagger's alert events).
NOTIFIED = {
    "progressing": (Severity.INFO, "started"),
    "paused": (Severity.INFO, "paused"),
    "gate_waiting": (Severity.INFO, "waiting for confirmation"),
    "pause": (Severity.WARNING, "paused by a person"),
    "no_data": (Severity.WARNING, "paused: no data"),
    "inconclusive": (Severity.WARNING, "paused: inconclusive"),
    "hook_failed": (Severity.WARNING, "hook failed"),
    "promoted": (Severity.INFO, "promoted"),
    "aborted": (Severity.WARNING, "aborted"),
    "rolled_back": (Severity.ERROR, "rolled back"),
    "failed": (Severity.ERROR, "failed"),
}
ICONS = {Severity.INFO: ":large_blue_circle:", Severity.WARNING: ":warning:", Severity.ERROR: ":x:"}


def providers_for(event: RolloutEvent) -> list[AlertProvider]:
    """Enabled providers whose scope holds the rollout and whose threshold the event reaches."""
    severity, _ = NOTIFIED[event.kind]
    service = event.rollout.service
    scoped = AlertProvider.objects.filter(enabled=True).filter(
        Q(service=service) | Q(service__isnull=True, namespace__in=["", service.namespace])
    )
    return [p for p in scoped if SEVERITY_RANK[p.min_severity] <= SEVERITY_RANK[severity]]


def rollout_url(rollout_id: int) -> str:
    return f"{settings.CONSOLE_URL.rstrip('/')}/deployments/rollouts/{rollout_id}/"


def message(event: RolloutEvent, provider: AlertProvider) -> dict:
    """The body for a provider: Slack's `text` (mrkdwn) or the generic JSON document."""
    severity, title = NOTIFIED[event.kind]
    rollout = event.rollout
    service = rollout.service
    url = rollout_url(rollout.pk)
    if provider.kind == AlertProvider.Kind.SLACK:
        text = (
            f"{ICONS[severity]} *{service.namespace}/{service.name}* "
            f"{rollout.from_tag or '?'} → {rollout.image_tag} {title}: {event.message} "
            f"(<{url}|rollout #{rollout.pk}>)"
        )
        return {"text": text}
    return {
        "event": event.kind,
        "severity": severity,
        "title": title,
        "message": event.message,
        "service": service.name,
        "namespace": service.namespace,
        "rollout_id": rollout.pk,
        "image_tag": rollout.image_tag,
        "from_tag": rollout.from_tag,
        "status": rollout.status,
        "weight": rollout.current_weight,
        "at": event.at.isoformat(),
        "url": url,
    }


class DeliveryFailed(Exception):
    """A provider did not take the message but may later (no answer, 429 or 5xx)."""


def notification_send(*, event_id: int, provider_id: int) -> int | None:
    """Send one event to one provider; the status code, or None when the guard refused the URL.

    Raises DeliveryFailed for what may pass, so the task retries with backoff.
    """
    event = RolloutEvent.objects.select_related("rollout__service").get(pk=event_id)
    provider = AlertProvider.objects.get(pk=provider_id)
    try:
        response = outbound.post(provider.url, json=message(event, provider), timeout=10.0)
    except outbound.OutboundRefused:
        return None
    except outbound.OutboundError as exc:
        raise DeliveryFailed(str(exc)) from exc
    if response.status == 429 or response.status >= 500:
        raise DeliveryFailed(f"HTTP {response.status}")
    return response.status


def chat_destinations() -> list[str]:
    """The enabled alert providers, by name: where other rooms' alerts may post."""
    return list(AlertProvider.objects.filter(enabled=True).values_list("name", flat=True))


def chat_send(name: str, msg: chat.ChatMessage) -> int | None:
    """Another room's alert to the enabled provider `name`, in that provider's format (Slack's
    `text`, or a JSON document); the status, or None when the guard refused the URL."""
    provider = AlertProvider.objects.filter(name=name, enabled=True).first()
    if provider is None:
        raise chat.ChatUnavailable(f"no enabled alert provider named {name!r}")
    icon = ICONS.get(Severity(msg.severity), "")
    if provider.kind == AlertProvider.Kind.SLACK:
        link = f" (<{msg.url}|open>)" if msg.url else ""
        body = {"text": f"{icon} *{msg.title}*: {msg.text}{link}".strip()}
    else:
        body = {
            "severity": msg.severity,
            "title": msg.title,
            "message": msg.text,
            "url": msg.url,
            **msg.fields,
        }
    try:
        response = outbound.post(provider.url, json=body, timeout=10.0)
    except outbound.OutboundRefused:
        return None
    except outbound.OutboundError as exc:
        raise chat.ChatDeliveryFailed(str(exc)) from exc
    if response.status == 429 or response.status >= 500:
        raise chat.ChatDeliveryFailed(f"HTTP {response.status}")
    return response.status
