"""End to end on a real Celery worker: the retrain button's API → ml queue → version → scores."""

import time

import pytest
from django.db import transaction
from django.db.models.signals import post_save

from analytics.insights.models import ModelVersion, TrainingRun


@pytest.mark.slow
def test_retrain_through_a_real_worker(
    small_history, celery_worker, engineer, api_client_for, settings, tmp_path
):
    from analytics.store import store

    settings.ML_MODEL_DIR = tmp_path
    # Every stage the worker (a thread of this process) saves, and whether it saved it in its
    # own committed statement, so a poll of the API sees it as it happens. Recorded, not
    # polled: on a quick machine a poll every 0.5 s could miss all but one stage.
    saved = []

    def record(sender, instance, update_fields=None, **kwargs):
        if update_fields and "stage" in update_fields:
            committed = not transaction.get_connection().in_atomic_block
            saved.append((instance.stage, instance.progress, committed))

    post_save.connect(record, sender=TrainingRun, weak=False)
    try:
        client = api_client_for(engineer)
        run_id = client.post("/api/insights/models/churn/retrain/").json()["id"]
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            run = client.get(f"/api/insights/runs/{run_id}/").json()
            if run["state"] in ("succeeded", "failed"):
                break
            time.sleep(0.2)
    finally:
        post_save.disconnect(record, sender=TrainingRun)
    assert run["state"] == "succeeded", run["error"]
    assert run["progress"] == 100 and run["model_version"] == 1
    stages = [stage for stage, _, _ in saved]
    assert list(dict.fromkeys(stages)) == [
        "extracting",
        "training",
        "validating",
        "scoring",
        "done",
    ]
    progress = [p for _, p, _ in saved]
    assert progress == sorted(progress) and progress[-1] == 100
    assert all(committed for _, _, committed in saved)
    version = ModelVersion.objects.get(kind="churn", version=1)
    assert version.is_active and version.metrics["roc_auc"] > 0.7  # 0.8+ asserted on more data
    assert (tmp_path / "churn-v1.joblib").exists()
    scored = store().query("SELECT count() AS n FROM user_insights FINAL")[0]["n"]
    assert scored == small_history.users
    # the run released the per-kind lock: nothing unfinished is left
    assert not TrainingRun.objects.filter(state__in=["queued", "running"]).exists()
