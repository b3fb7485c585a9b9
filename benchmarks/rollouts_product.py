"""`bench rollouts`, product part: how many minutes of traffic at the demo's rates a canary
that lowers render success by 10 % relative (a `quality-fault` tag) needs before the product
metric fails it, against an error-rate judge looking at the same canary in the same run.

Per seed: the simulated cluster's canary at 10 % (the first step) serves its users for up to
an hour; every minute its product events (analytics/cluster model: 240 renders a minute over
4,000 users, sticky routing) go into a temporary embedded store and both judges look. The
product metric is the demo services' template (`render_success`, the experiments engine's
sequential test on users); the error-rate judge is the default limits (5 %, stable + 1 point)
on the same cluster's samples. A healthy canary runs the same way for the false-alarm count.
"""

from __future__ import annotations

import datetime as dt
import shutil
import statistics
import tempfile
from pathlib import Path

from django.db import transaction
from django.test.utils import override_settings

WEIGHT = 10


def _error_rate_fails(canary: dict, stable: dict, template: dict) -> bool:
    """The default error_rate template's check (5 %, stable + 1 point) fails."""
    from deployments.judge import check
    from deployments.metrics.templates import FAIL, Measurement

    measured = Measurement(canary["error_rate"], stable["error_rate"])
    return check(template, measured)["verdict"] == FAIL


def _one_canary(service, cluster, metric, *, seed: int, tag: str, horizon: int, start):
    """Minutes until the product metric fails (None: never within the horizon), minutes until
    its failure limit is reached, and whether the error-rate judge ever failed it."""
    from analytics.store.bulk import rows_insert
    from deployments.cluster.simulated import product_events
    from deployments.metrics.store import store_metric_evaluate
    from deployments.metrics.templates import default_templates
    from deployments.models import SimDeployment

    error_rate = next(t for t in default_templates() if t["name"] == "error_rate")
    stable_tag = f"v1-seed{seed}"
    canary_tag = f"v2-seed{seed}-{tag}" if tag else f"v2-seed{seed}"
    cluster.apply_canary(
        service, image=service.image_for(canary_tag), replicas=1, rollout_id=seed, by="bench"
    )
    cluster.update_stable(service, image=service.image_for(stable_tag), rollout_id=seed, by="bench")
    # ready since before the window, so the cluster samples both at the window's times
    SimDeployment.objects.filter(namespace=service.namespace).update(ready_at=start)
    first = rolled_back = None
    consecutive = 0
    error_rate_failed = False
    for minute in range(1, horizon + 1):
        lo = start + dt.timedelta(minutes=minute - 1)
        hi = start + dt.timedelta(minutes=minute)
        rows = product_events(
            service,
            canary_tag=canary_tag,
            stable_tag=stable_tag,
            canary_share=WEIGHT,
            start=lo,
            end=hi,
            minutes=1,
            seed=seed,
        )
        rows_insert(table="events", rows=rows)
        result = store_metric_evaluate(
            metric,
            canary_share=WEIGHT,
            service=service,
            canary_tag=canary_tag,
            stable_tag=stable_tag,
            start=start,
            end=hi,
        )
        consecutive = consecutive + 1 if result["verdict"] == "fail" else 0
        if consecutive and first is None:
            first = minute
        if consecutive >= 2 and rolled_back is None:
            rolled_back = minute
        canary = cluster.sample(service, "canary", at=hi)
        stable = cluster.sample(service, "stable", at=hi)
        error_rate_failed |= _error_rate_fails(canary, stable, error_rate)
        if rolled_back is not None:
            break
    return first, rolled_back, error_rate_failed


def product_detection(stdout, *, quick: bool) -> dict:
    from analytics.store import store
    from analytics.store.migrate import store_migrate
    from deployments.cluster.simulated import SimulatedCluster
    from deployments.metrics.store import RENDER_SUCCESS_TEMPLATE, metric_from_template
    from deployments.models import Service

    seeds = range(3 if quick else 9)
    horizon = 30 if quick else 60
    metric = metric_from_template(RENDER_SUCCESS_TEMPLATE)
    workdir = Path(tempfile.mkdtemp(prefix="bench-rollouts-product-"))
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=1)
    faulty, healthy = [], []
    try:
        with override_settings(CLICKHOUSE_URL=f"chdb://{workdir}"):
            db = store()
            store_migrate(target=db)
            with transaction.atomic():
                service = Service.objects.create(
                    name="bench-renderer", namespace="bench-rollouts", image="bench/renderer"
                )
                cluster = SimulatedCluster(ready_seconds=0)
                cluster.ensure_routing(service)
                cluster.ensure_stable(service)
                cluster.set_canary_weight(service, WEIGHT)
                for seed in seeds:
                    faulty.append(
                        _one_canary(
                            service,
                            cluster,
                            metric,
                            seed=seed,
                            tag="quality-fault",
                            horizon=horizon,
                            start=start + dt.timedelta(hours=2 * seed),
                        )
                    )
                    healthy.append(
                        _one_canary(
                            service,
                            cluster,
                            metric,
                            seed=100 + seed,
                            tag="",
                            horizon=horizon,
                            start=start + dt.timedelta(hours=2 * seed + 1),
                        )
                    )
                transaction.set_rollback(True)
            db.release()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        for suffix in (".lock", ".lock.waiting"):
            Path(f"{workdir}{suffix}").unlink(missing_ok=True)
    caught = [f for f, _r, _e in faulty if f is not None]
    rolled = [r for _f, r, _e in faulty if r is not None]
    error_caught = sum(e for _f, _r, e in faulty)
    alarms = sum(r is not None for _f, r, _e in healthy)
    n = len(faulty)
    median_caught = statistics.median(caught) if len(caught) == n else None
    median_rolled = statistics.median(rolled) if len(rolled) == n else None
    stdout.write(
        f"product metric render_success, canary at {WEIGHT} % lowering render success 10 % "
        f"relative: first failing look after {_minutes(median_caught, horizon)}, rolled back "
        f"(2 failing looks in a row) after {_minutes(median_rolled, horizon)} of traffic "
        f"(median of {n} seeds; each {sorted(rolled)}; looks every minute, 240 renders/min)"
    )
    stdout.write(
        f"error-rate judge on the same canaries: failed {error_caught} of {n} within "
        f"{horizon} min; healthy canaries rolled back by the product metric: {alarms} of {n}"
    )
    return {
        "caught_minutes": median_rolled,
        "horizon": horizon,
        "seeds": n,
        "error_rate_caught": error_caught,
        "false_alarms": alarms,
    }


def _minutes(value, horizon: int) -> str:
    return f"{value:g} min" if value is not None else f"more than {horizon} min (some seeds)"
