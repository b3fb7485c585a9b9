"""Cohort APIs: roles, 400s naming the field, the CSV upload, members, compute, delete."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from analytics.cohorts.models import Cohort

pytestmark = pytest.mark.django_db
DEFINITION = {"op": "or", "rules": [{"type": "event", "event": "render", "count": 1, "days": 7}]}


def test_create_read_update_compute_delete(
    analytics_store, pm, api_client_for, django_capture_on_commit_callbacks
):
    client = api_client_for(pm)
    with django_capture_on_commit_callbacks() as queued:
        created = client.post(
            "/api/cohorts/", {"name": "recent", "definition": DEFINITION}, format="json"
        )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["kind"], body["state"], body["size"], body["version"]) == (
        "dynamic",
        "queued",
        None,
        0,
    )
    assert len(queued) == 1  # the first computation, on commit
    detail = client.get(f"/api/cohorts/{body['id']}/").json()
    assert detail["history"] == [] and detail["definition"]["rules"][0]["operator"] == "gte"
    bad = client.patch(
        f"/api/cohorts/{body['id']}/", {"definition": {"rules": [{"type": "event"}]}}, format="json"
    )
    assert bad.status_code == 422  # the definition's grammar is past the schema's `object`
    assert "definition.rules[0].event" in bad.json()["detail"]
    assert client.post(f"/api/cohorts/{body['id']}/compute/").status_code == 202
    assert client.delete(f"/api/cohorts/{body['id']}/").status_code == 204
    assert client.get(f"/api/cohorts/{body['id']}/").status_code == 404


def test_upload_csv_and_page_members(analytics_store, pm, api_client_for):
    client = api_client_for(pm)
    upload = SimpleUploadedFile("users.csv", b"user_id\nu2\nu1\n ,x\n", content_type="text/csv")
    answer = client.post(
        "/api/cohorts/upload/", {"name": "beta", "file": upload}, format="multipart"
    )
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert (body["accepted"], body["rejected"]) == (2, 1)
    assert body["problems"] == [{"line": 4, "problem": "empty user id"}]
    members = client.get(f"/api/cohorts/{body['cohort']['id']}/members/?page_size=1&page=2").json()
    assert members["users"] == ["u2"] and members["size"] == 2
    again = client.post("/api/cohorts/static/", {"name": "beta", "user_ids": ["u1"]}, format="json")
    assert again.status_code == 409 and "name" in again.json()["detail"]
    empty = client.post(
        "/api/cohorts/static/", {"name": "none", "user_ids": [5, ""]}, format="json"
    )
    assert empty.status_code == 422 and "user_ids" in empty.json()["detail"]
    assert client.post(f"/api/cohorts/{body['cohort']['id']}/compute/").status_code == 409


def test_engineers_read_but_do_not_write(analytics_store, engineer, api_client_for):
    client = api_client_for(engineer)
    assert client.get("/api/cohorts/").status_code == 200
    answer = client.post("/api/cohorts/", {"name": "x", "definition": DEFINITION}, format="json")
    assert answer.status_code == 403
    assert Cohort.objects.count() == 0


def test_pages_list_create_and_show(analytics_store, pm, engineer, client):
    from analytics.cohorts import services

    client.force_login(pm)
    empty = client.get("/analytics/cohorts/")
    assert b"No cohorts yet" in empty.content
    bad = client.post("/analytics/cohorts/", {"kind": "dynamic", "name": "x", "definition": "{"})
    assert bad.status_code == 400 and b"not JSON" in bad.content
    users = services.user_ids_from_list(["u1", "u2"])
    cohort = services.static_cohort_create(name="beta", users=users, source="list", by=pm)
    detail = client.get(f"/analytics/cohorts/{cohort.pk}/")
    assert detail.status_code == 200 and b"u2" in detail.content
    assert (
        client.get(f"/analytics/cohorts/{cohort.pk}/?csv=1").content == b"user_id\r\nu1\r\nu2\r\n"
    )
    client.force_login(engineer)
    assert client.post(f"/analytics/cohorts/{cohort.pk}/", {"action": "delete"}).status_code == 403


def test_a_drill_down_list_becomes_a_static_cohort(analytics_store, pm, engineer, client):
    import datetime as dt

    from analytics.product.tests.product_data import load, rows_from_spec

    spec = [("u1", "a", 0, {}), ("u2", "a", 1, {}), ("u2", "b", 2, {}), ("u3", "a", 3, {})]
    load(rows_from_spec(spec, start=dt.datetime(2024, 1, 1, tzinfo=dt.UTC)))
    url = "/analytics/funnel/dropped/?steps=a,b&step=2&date_from=2024-01-01&date_to=2024-01-31"
    client.force_login(pm)
    answer = client.post(url, {"cohort_name": "dropped at b"})
    cohort = Cohort.objects.get(name="dropped at b")
    assert answer.status_code == 302 and answer["Location"] == f"/analytics/cohorts/{cohort.pk}/"
    assert (cohort.kind, cohort.size) == ("static", 2)  # u1 and u3 reached a but not b
    client.force_login(engineer)
    assert client.post(url, {"cohort_name": "again"}).status_code == 403
