"""Titles and bodies of notifications from the per-type, per-locale templates (admin-editable)."""

import string

from devices.models import Device, Notification, NotificationTemplate, NotificationType
from devices.providers import PushMessage

FALLBACK_LOCALE = "en"


class _Blank(dict):
    """A placeholder the notification's data lacks renders as nothing, not as '{name}'."""

    def __missing__(self, key):
        return ""


def render(text: str, data: dict) -> str:
    """Fill plain `{name}` placeholders. Format specs and conversions are ignored, never run
    (admin refuses them; a template saved before that still cannot pad to a gigabyte)."""
    values = _Blank({k: v for k, v in data.items() if isinstance(k, str)})
    try:
        parts = []
        for literal, name, _spec, _conversion in string.Formatter().parse(text):
            parts.append(literal)
            if name is not None:
                parts.append(str(values[name]) if name.isidentifier() else "")
        return "".join(parts)
    except ValueError:
        return text  # admin validates templates; a broken one is shown verbatim, not dropped


class Renderer:
    """Loads every template once per fan-out and picks the best locale for each device:
    exact (pt-BR), then language (pt), then English."""

    def __init__(self):
        self._templates = {
            (t.type, t.locale.lower()): t for t in NotificationTemplate.objects.all()
        }

    def template(self, type: str, locale: str) -> NotificationTemplate | None:
        locale = (locale or FALLBACK_LOCALE).replace("_", "-").lower()
        for candidate in (locale, locale.split("-")[0], FALLBACK_LOCALE):
            found = self._templates.get((type, candidate))
            if found is not None:
                return found
        return None

    def message(self, notification: Notification, device: Device) -> PushMessage:
        template = self.template(notification.type, device.locale)
        data = notification.data if isinstance(notification.data, dict) else {}
        if notification.type == NotificationType.BROADCAST:
            title, body = str(data.get("title", "")), str(data.get("body", ""))
        elif template is None:
            title, body = NotificationType(notification.type).label.capitalize(), ""
        else:
            title, body = render(template.title, data), render(template.body, data)
        return PushMessage(
            notification_id=notification.pk,
            type=notification.type,
            title=title,
            body=body,
            data=data,
        )
