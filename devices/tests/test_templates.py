"""Notification templates are admin-edited text: only plain placeholders, never format specs."""

import time

import pytest

from devices.models import NotificationTemplate
from devices.rendering import render

pytestmark = pytest.mark.django_db


def test_admin_refuses_a_format_spec_bomb(client, admin_user):
    client.force_login(admin_user)
    response = client.post(
        "/admin/devices/notificationtemplate/add/",
        {"type": "VIDEO_COMPLETED", "locale": "fr", "title": "{title:>999999999}", "body": "b"},
    )
    assert response.status_code == 200  # the form again, with the error
    assert "takes no format spec" in response.content.decode()
    assert not NotificationTemplate.objects.filter(locale="fr").exists()


@pytest.mark.parametrize("text", ["{title!r}", "{title:,}", "{n:0>50}"])
def test_admin_refuses_any_spec_or_conversion(client, admin_user, text):
    client.force_login(admin_user)
    response = client.post(
        "/admin/devices/notificationtemplate/add/",
        {"type": "VIDEO_COMPLETED", "locale": "fr", "title": text, "body": "b"},
    )
    assert "takes no format spec" in response.content.decode()


def test_a_stored_bomb_renders_small_and_fast():
    started = time.monotonic()
    out = render('Video "{title:>999999999}" ready {title!r}', {"title": "Moby"})
    assert out == 'Video "Moby" ready Moby'
    assert time.monotonic() - started < 5  # the old code allocated a gigabyte here
