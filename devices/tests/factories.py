"""Factories of the devices area."""

import secrets

import factory
from django.utils import timezone as dj_timezone

from devices.models import Device, Notification


def apns_token(marker: str = "") -> str:
    """A hex APNs token; `marker` (hex, e.g. 0410) chooses the loopback service's answer."""
    # Unmarked tokens start with "f", so they never begin with a marker by chance.
    return ((marker or "f") + secrets.token_hex(32))[:64]


def fcm_token(marker: str = "") -> str:
    return f"fcm-{marker}-{secrets.token_urlsafe(40)}"


class DeviceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Device

    user_id = factory.Sequence(lambda n: f"u-{n}")
    platform = "android"
    token = factory.LazyFunction(fcm_token)
    endpoint = None
    app_version = "3.2.0"
    os_version = "14"
    locale = "en"
    timezone = "UTC"
    last_seen_at = factory.LazyFunction(dj_timezone.now)


class NotificationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Notification

    user_id = "u-1"
    type = "VIDEO_COMPLETED"
    data = factory.LazyFunction(lambda: {"title": "Moby Dick"})
