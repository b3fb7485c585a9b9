"""Factories for staff users with a role."""

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

PASSWORD = "pw-for-tests"


class UserFactory(factory.django.DjangoModelFactory):
    """`UserFactory(role="engineer")`; role None makes a staff user without any role."""

    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    email = factory.LazyAttribute(lambda u: f"{u.username}@book2video.test")
    is_staff = True

    @classmethod
    def _create(cls, model_class, *args, role=None, **kwargs):
        user = super()._create(model_class, *args, **kwargs)
        user.set_password(PASSWORD)
        user.save()
        if role:
            user.groups.add(Group.objects.get(name=role))
        return user


# Alertmanager webhook payloads (version 4), as Alertmanager posts them.
ALERT_TOKEN = "alert-token-for-tests"
STARTS = "2026-11-25T06:00:00.000Z"


def alert(
    name="HighAICost", *, status="firing", fingerprint="a1b2c3d4e5f60718", starts=STARTS, **labels
):
    return {
        "status": status,
        "labels": {"alertname": name, "severity": "warning", **labels},
        "annotations": {"summary": f"{name} test"},
        "startsAt": starts,
        "endsAt": "2026-11-25T06:30:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": fingerprint,
    }


def payload(*alerts, status="firing"):
    return {
        "version": "4",
        "groupKey": '{}:{alertname="x"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "book2video-console",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
    }
