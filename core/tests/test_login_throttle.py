"""Ten wrong passwords lock the user name out from that address, even with the right one."""

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db

PASSWORD = "right-horse-battery-staple"


@pytest.fixture
def person(make_user):
    user = make_user("engineer", username="erin-login")
    user.set_password(PASSWORD)
    user.save()
    return user


def _login(client, password):
    return client.post("/login/", {"username": "erin-login", "password": password})


def test_ten_wrong_passwords_are_locked_out(client, person):
    for _ in range(9):
        assert _login(client, "wrong").status_code == 200  # the form again
    locked = _login(client, "wrong")  # the tenth
    assert locked.status_code == 429
    # Locked out: the right password does not get in now.
    refused = _login(client, PASSWORD)
    assert refused.status_code == 429
    assert "_auth_user_id" not in client.session
    call_command("axes_reset", verbosity=0)
    assert _login(client, PASSWORD).status_code == 302


def test_a_right_password_resets_the_count(client, person):
    for _ in range(9):
        _login(client, "wrong")
    assert _login(client, PASSWORD).status_code == 302
    client.logout()
    for _ in range(9):
        assert _login(client, "wrong").status_code == 200


def test_staff_tokens_expire(engineer, settings):
    import datetime as dt

    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    token = Token.objects.create(user=engineer)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get("/api/me/").status_code == 200
    Token.objects.filter(pk=token.pk).update(
        created=token.created - dt.timedelta(days=settings.STAFF_TOKEN_DAYS + 1)
    )
    expired = client.get("/api/me/")
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
