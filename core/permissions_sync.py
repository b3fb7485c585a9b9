"""Keeps each role group's model permissions equal to settings.ROLE_MODEL_PERMISSIONS."""

from django.conf import settings
from django.contrib.auth.models import Group, Permission


def sync_role_permissions(sender=None, **kwargs) -> None:
    for role, targets in settings.ROLE_MODEL_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = Permission.objects.none()
        for target in targets:
            app_label, _, model = target.partition(".")
            qs = Permission.objects.filter(content_type__app_label=app_label)
            if model:
                qs = qs.filter(content_type__model=model)
            wanted = wanted | qs
        group.permissions.set(wanted.distinct())
