"""`manage.py bench ml` and `bench generate`.

`bench ml`: extraction + training on 100,000 users, batch scoring, the insight API.

Runs in a scratch embedded store (real data is never touched). The churn model's validation
AUC is reported next to a majority-class and a logistic-regression baseline fitted on the
same time-based split in the same run.
"""

import datetime as dt
import shutil
import statistics
import tempfile
import time

from django.conf import settings
from threadpoolctl import threadpool_limits

from analytics.insights import training
from analytics.insights.scoring import score_all
from analytics.simulation import GenerationSpec, generate
from analytics.store import store_for_url
from analytics.store.migrate import store_migrate
from benchmarks.harness import percentile


def scratch_store():
    """A fresh embedded store in a temporary directory (benchmarks never touch real data)."""
    path = tempfile.mkdtemp(prefix="bench_store_")
    db = store_for_url(f"chdb://{path}/chdb")
    store_migrate(target=db)
    return db, path


def bench_generate(stdout, *, quick: bool = False) -> None:
    """generate_events speed (goal: 10 M events < 60 s) vs the store's own copy rate."""
    users = 12_000 if quick else 120_000
    db, path = scratch_store()
    try:
        result = generate(GenerationSpec(users=users, months=12, seed=1), db=db)
        stdout.write(
            f"generated {result.events:,} events for {users:,} users in {result.seconds:.1f} s "
            f"({result.events_per_second:,.0f} events/s)"
        )
        with db.session():
            db.command("CREATE TABLE events_copy AS events")
            started = time.perf_counter()
            db.command(
                "INSERT INTO events_copy (uuid, event, user_id, timestamp, properties, "
                "session_id, user_agent) SELECT uuid, event, user_id, timestamp, properties, "
                "session_id, user_agent FROM events"
            )
            copy_rate = result.events / (time.perf_counter() - started)
        stdout.write(f"store copy of the same rows (INSERT ... SELECT): {copy_rate:,.0f} events/s")
        per_10m = 10_000_000 / result.events_per_second
        stdout.write(f"projected time for 10 M events: {per_10m:.0f} s (goal < 60 s)")
        stdout.write(
            f"generate: {result.events_per_second:,.0f} events/s, "
            f"ratio {result.events_per_second / copy_rate:.2f} vs store copy rate"
        )
    finally:
        db.release()
        shutil.rmtree(path, ignore_errors=True)


def _p95_ms(call, items) -> tuple[float, float]:
    """(p95, median) in milliseconds of `call` on each item."""
    lat = []
    for item in items:
        t = time.perf_counter()
        call(item)
        lat.append((time.perf_counter() - t) * 1000)
    return percentile(lat, 95), statistics.median(lat)


def _bench_insight_api(stdout, db, path: str, ids: list[str]) -> None:
    """`GET /api/users/<id>/insights/` through the whole Django stack (session auth, DRF), on
    the Redis copy that batch scoring wrote, then on cache misses (read from `user_insights`),
    against `GET /health` through the same client."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.cache import cache
    from django.test import Client, override_settings

    from analytics.insights.scoring import insight_cache_key

    user, _ = get_user_model().objects.get_or_create(
        username="bench-insights", defaults={"is_staff": True}
    )
    user.groups.add(Group.objects.get(name="product"))
    client = Client()
    client.force_login(user)

    def get(url):
        response = client.get(url)
        assert response.status_code == 200, response.content[:200]

    try:
        with override_settings(CLICKHOUSE_URL=f"chdb://{path}/chdb"):
            health_p95, _ = _p95_ms(get, ["/health"] * len(ids))
            urls = [f"/api/users/{u}/insights/" for u in ids]
            p95, median = _p95_ms(get, urls)
            cache.delete_many([insight_cache_key(db, u) for u in ids])
            miss_p95, miss_median = _p95_ms(get, urls)
    finally:
        user.delete()
    stdout.write(
        f"insight API from the Redis copy ({len(ids)} users, full Django stack): p95 {p95:.1f} ms, "
        f"median {median:.1f} ms (goal p95 < 50 ms); GET /health p95 {health_p95:.1f} ms"
    )
    stdout.write(
        f"insight API on a cache miss (read from user_insights): p95 {miss_p95:.1f} ms, "
        f"median {miss_median:.1f} ms"
    )


def bench_ml(stdout, *, quick: bool = False) -> None:
    users = 10_000 if quick else 100_000
    end = dt.datetime.now(dt.UTC).replace(microsecond=0)
    db, path = scratch_store()
    try:
        made = generate(GenerationSpec(users=users, months=12, seed=5, end=end), db=db)
        stdout.write(f"data: {made.events:,} events for {users:,} users ({made.seconds:.0f} s)")
        stage_times = {}
        last = [time.perf_counter(), None]

        def stage(name, _percent):
            now = time.perf_counter()
            if last[1]:
                stage_times[last[1]] = stage_times.get(last[1], 0) + now - last[0]
            last[:] = [now, name]

        started = time.perf_counter()
        with threadpool_limits(limits=settings.ML_THREADS):
            trained = training.train(
                "churn",
                end=end,
                window_days=settings.ML_WINDOW_DAYS,
                horizon_days=settings.ML_HORIZON_DAYS,
                ltv_horizon_days=settings.ML_LTV_HORIZON_DAYS,
                db=db,
                stage=stage,
            )
        stage("done", 100)
        total = time.perf_counter() - started
        m = trained.metrics
        base = m["baselines"]
        stdout.write(
            f"extraction + training (churn, {trained.train_rows:,} train / "
            f"{trained.validation_rows:,} validation rows): {total:.1f} s (goal < 120 s); "
            + ", ".join(f"{k} {v:.1f} s" for k, v in stage_times.items())
        )
        stdout.write(
            f"churn ROC AUC {m['roc_auc']:.3f}, PR AUC {m['pr_auc']:.3f}, Brier {m['brier']:.4f}, "
            f"calibration error {m['calibration_error']:.4f}"
        )
        stdout.write(
            f"baselines: majority class AUC {base['majority_class']['roc_auc']:.3f} "
            f"(Brier {base['majority_class']['brier']:.4f}); logistic regression AUC "
            f"{base['logistic_regression']['roc_auc']:.3f} "
            f"(Brier {base['logistic_regression']['brier']:.4f})"
        )
        started = time.perf_counter()
        count = score_all(db=db, models={"churn": trained.model}, versions={"churn": 0})
        stdout.write(
            f"batch scoring: {count:,} users in {time.perf_counter() - started:.1f} s (goal < 30 s)"
        )
        ids = [r["user_id"] for r in db.query("SELECT user_id FROM users LIMIT 200")]
        _bench_insight_api(stdout, db, path, ids)
        logistic = base["logistic_regression"]["roc_auc"]
        stdout.write(
            f"ml: churn ROC AUC {m['roc_auc']:.3f}, ratio {m['roc_auc'] / logistic:.3f} "
            f"vs logistic regression AUC {logistic:.3f}"
        )
    finally:
        db.release()
        shutil.rmtree(path, ignore_errors=True)
