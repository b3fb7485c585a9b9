"""End to end on a real Celery worker: the retrain button's API → ml queue → version → scores."""

import time

import pytest

from analytics.models import ModelVersion, TrainingRun


@pytest.mark.slow
def test_retrain_through_a_real_worker(
    small_history, celery_worker, engineer, api_client_for, settings, tmp_path
):
    from analytics.store import store

    settings.ML_MODEL_DIR = tmp_path
    client = api_client_for(engineer)
    run_id = client.post("/api/insights/models/churn/retrain/").json()["id"]
    seen_stages = set()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        run = client.get(f"/api/insights/runs/{run_id}/").json()
        seen_stages.add(run["stage"])
        if run["state"] in ("succeeded", "failed"):
            break
        time.sleep(0.5)
    assert run["state"] == "succeeded", run["error"]
    assert run["progress"] == 100 and run["model_version"] == 1
    assert len(seen_stages - {"queued"}) >= 2  # progress was visible on the way
    version = ModelVersion.objects.get(kind="churn", version=1)
    assert version.is_active and version.metrics["roc_auc"] > 0.7  # 0.8+ asserted on more data
    assert (tmp_path / "churn-v1.joblib").exists()
    scored = store().query("SELECT count() AS n FROM user_insights FINAL")[0]["n"]
    assert scored == small_history.users
    # the run released the per-kind lock: nothing unfinished is left
    assert not TrainingRun.objects.filter(state__in=["queued", "running"]).exists()
