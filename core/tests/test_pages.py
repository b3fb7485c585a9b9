"""Login, home page, navigation and logout as a person sees them."""

import pytest
from django.urls import reverse

from core.tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def test_login_page_renders_for_anonymous(client):
    response = client.get("/login/")
    assert response.status_code == 200
    assert b'name="username"' in response.content and b'name="password"' in response.content


def test_home_redirects_anonymous_to_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/")


def test_wrong_password_is_refused_with_message(client, engineer):
    response = client.post("/login/", {"username": engineer.username, "password": "nope"})
    assert response.status_code == 200
    assert b"did not match" in response.content
    assert "_auth_user_id" not in client.session


def test_login_shows_home_with_navigation_name_and_role(client, engineer):
    response = client.post(
        "/login/", {"username": engineer.username, "password": PASSWORD}, follow=True
    )
    assert response.status_code == 200
    html = response.content.decode()
    for area in ("Deployments", "Analytics", "Experiments", "Devices", "Admin"):
        assert area in html
    assert engineer.first_name in html
    assert 'class="badge role-engineer"' in html
    assert "Log out" in html


@pytest.mark.parametrize("area", ["deployments", "analytics", "experiments", "devices"])
def test_every_area_has_a_page_with_an_explaining_empty_state_or_content(client, pm, area):
    client.force_login(pm)
    response = client.get(reverse(f"{area}:index"))
    assert response.status_code == 200
    assert b"<h1>" in response.content


def test_logout_ends_the_session(client, engineer):
    client.force_login(engineer)
    response = client.post("/logout/")
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_user_without_role_is_refused_pages(client, make_user):
    client.force_login(make_user(None, username="norole"))
    assert client.get("/").status_code == 403


def test_plotly_is_served_from_static_files(client):
    response = client.get("/static/plotly/plotly.min.js")
    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert b"plotly" in body[:2000].lower()
