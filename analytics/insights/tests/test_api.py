"""Insight API, registry API and pages over a real trained churn model and batch scoring."""

import csv
import io

import pytest
from django.test import override_settings

from analytics.insights.tests.conftest import train_churn_once


@pytest.fixture(scope="module")
def _trained_once(ml_history):
    return train_churn_once()


@pytest.fixture(scope="module")
def scored(_trained_once, django_db_blocker, tmp_path_factory):
    """Churn v1 trained, registered (active) and every user scored into user_insights."""
    from analytics.insights.models import ModelVersion
    from analytics.insights.scoring import score_all
    from analytics.insights.services import model_version_register
    from analytics.store import store

    models_dir = tmp_path_factory.mktemp("models")
    with override_settings(ML_MODEL_DIR=models_dir), django_db_blocker.unblock():
        version = model_version_register(trained=_trained_once, triggered_by="test")
        count = score_all()
        rows = store().query_df("SELECT * FROM user_insights FINAL")
        yield {"version": version, "count": count, "rows": rows}
        ModelVersion.objects.all().delete()


def test_batch_scoring_covers_every_user(scored, ml_history):
    rows = scored["rows"]
    assert scored["count"] == len(rows) == ml_history.users
    assert rows["churn_probability"].between(0, 1).all()
    assert rows["engagement_score"].between(0, 100).all()
    assert (rows["model_versions"] == '{"churn": 1}').all()
    assert scored["version"].is_active and scored["version"].activation_note.startswith("activated")


def test_insight_api_serves_the_scored_row(scored, pm, api_client_for):
    row = scored["rows"].sort_values("churn_probability").iloc[len(scored["rows"]) // 2]
    response = api_client_for(pm).get(f"/api/users/{row['user_id']}/insights/")
    assert response.status_code == 200
    body = response.json()
    assert body["source"] == "scored" and body["model_versions"] == {"churn": 1}
    assert body["churn_probability"] == pytest.approx(row["churn_probability"])
    assert body["next_best_action"] == row["next_best_action"]
    assert set(body) >= {
        "user_id",
        "ltv",
        "conversion_likelihood",
        "engagement_score",
        "computed_at",
    }


def test_on_demand_matches_the_batch(scored, pm, api_client_for):
    """Without a scored row the API computes the same prediction on demand."""
    from analytics.store import store

    active = scored["rows"][scored["rows"]["churn_probability"] < 1]
    row = active.iloc[0]
    store().command("DELETE FROM user_insights WHERE user_id = {u:String}", {"u": row["user_id"]})
    body = api_client_for(pm).get(f"/api/users/{row['user_id']}/insights/").json()
    assert body["source"] == "on_demand"
    assert body["churn_probability"] == pytest.approx(row["churn_probability"], abs=1e-4)
    assert body["engagement_score"] == pytest.approx(row["engagement_score"], abs=0.05)


def test_the_redis_copy_answers_like_the_table(scored, pm, api_client_for):
    """Batch scoring copies every insight into Redis; the API answers from that copy exactly
    as it answers from the `user_insights` table (paying users' null conversion included)."""
    from django.core.cache import cache

    from analytics.insights.scoring import insight_cache_key, score_all
    from analytics.store import store

    rows = scored["rows"]
    users = [
        rows[rows["conversion_likelihood"].isna()].iloc[0]["user_id"],
        rows[rows["conversion_likelihood"].notna()].iloc[0]["user_id"],
    ]
    client = api_client_for(pm)
    score_all()  # every user in the table again (an earlier test deletes one)
    cache.clear()
    from_table = {u: client.get(f"/api/users/{u}/insights/").json() for u in users}
    assert all(body["source"] == "scored" for body in from_table.values())
    cache.clear()
    score_all()
    for user_id in users:
        assert cache.get(insight_cache_key(store(), user_id)) is not None
        # Gone from the table: only the Redis copy can answer "scored" now.
        store().command("DELETE FROM user_insights WHERE user_id = {u:String}", {"u": user_id})
        body = client.get(f"/api/users/{user_id}/insights/").json()
        assert body["source"] == "scored"
        assert body == {**from_table[user_id], "computed_at": body["computed_at"]}
    assert from_table[users[0]]["conversion_likelihood"] is None
    score_all()  # the table whole again for the tests after this one


def test_unknown_user_is_404_and_no_history_gets_defaults(scored, pm, api_client_for):
    from analytics.insights.actions import DEFAULTS
    from analytics.store import store

    client = api_client_for(pm)
    response = client.get("/api/users/nobody-at-all/insights/")
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    store().insert("users", [{"user_id": "fresh-user", "signup_at": "2026-06-30 22:00:00"}])
    body = client.get("/api/users/fresh-user/insights/").json()
    assert body["source"] == "defaults"
    assert {k: body[k] for k in DEFAULTS} == DEFAULTS


def test_retrain_api_roles_conflict_and_validation(pm, engineer, api_client_for, scored):
    assert api_client_for(pm).post("/api/insights/models/churn/retrain/").status_code == 403
    client = api_client_for(engineer)
    first = client.post("/api/insights/models/churn/retrain/")
    assert first.status_code == 202 and first.json()["state"] == "queued"
    second = client.post("/api/insights/models/churn/retrain/")
    assert second.status_code == 409 and second.json()["error"] == "retrain_running"
    assert client.post("/api/insights/models/ltv/retrain/").status_code == 202  # other kind
    bad = client.post("/api/insights/models/bogus/retrain/")
    assert bad.status_code == 404 and "bogus" in bad.json()["detail"]  # not a model kind
    run = client.get(f"/api/insights/runs/{first.json()['id']}/").json()
    assert run["stage"] == "queued" and run["progress"] == 0


def test_models_page_shows_versions_and_charts(scored, client, pm):
    client.force_login(pm)
    html = client.get("/analytics/models/").content.decode()
    assert "v1" in html and "badge ok" in html and str(scored["version"].metrics["roc_auc"]) in html
    assert 'id="calibration-churn"' in html and "data-retrain" not in html  # pm cannot retrain
    assert "No ltv model yet" in html


def test_user_page(scored, client, pm):
    client.force_login(pm)
    user_id = scored["rows"]["user_id"].iloc[0]
    response = client.get(f"/analytics/users/{user_id}/")
    assert response.status_code == 200 and "Next best action" in response.content.decode()
    assert client.get("/analytics/users/nobody-at-all/").status_code == 404


def test_at_risk_page_and_csv_agree_with_pandas(scored, client, pm):
    client.force_login(pm)
    rows = scored["rows"]
    expected = rows[(rows["churn_probability"] >= 0.3) & (rows["churn_probability"] < 1)]
    expected = expected[expected["tier"] == "free"].sort_values(
        ["churn_probability", "ltv", "user_id"], ascending=[False, False, True]
    )
    response = client.get("/analytics/at-risk/?tier=free&min_churn=0.3&limit=50&format=csv")
    assert response["Content-Type"] == "text/csv"
    got = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["user_id"] for r in got] == list(expected["user_id"][:50])
    page = client.get("/analytics/at-risk/?min_churn=2").content.decode()
    assert "min_churn" in page and "msg error" in page


def test_at_risk_empty_state_explains(client, pm, analytics_store):
    client.force_login(pm)
    assert "No scored users yet" in client.get("/analytics/at-risk/").content.decode()


def test_pages_refuse_anonymous(client):
    for url in ("/analytics/models/", "/analytics/at-risk/", "/analytics/users/x/"):
        assert client.get(url).status_code == 302
