"""Demo data: services in book2video-production with promoted and rolled-back rollout history.

Idempotent: services are created once; history is added only to services that have none.
Samples come from the simulated model (a `fault` tag has a high error rate), spread over the
past days so the pages show real charts at once.
"""

import random
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from deployments.cluster.simulated import SimulatedCluster
from deployments.metrics.store import RENDER_SUCCESS_TEMPLATE
from deployments.models import (
    MetricSample,
    Phase,
    Rollout,
    RolloutEvent,
    Service,
    default_analysis,
    default_steps,
)
from deployments.services import metric_template_ensure, metric_templates_ensure_defaults

NAMESPACE = "book2video-production"
SERVICES = [
    # name, replicas, history: (from, to, outcome)
    ("api-gateway", 4, [("v1", "v2", "promoted"), ("v2", "v3-fault", "rolled_back")]),
    ("video-renderer", 6, [("v7", "v8", "promoted"), ("v8", "v9-fault", "rolled_back")]),
    (
        "book-parser",
        3,
        [("v0", "v1", "promoted")],
    ),  # ready for the README walk-through: v2, v3-fault
]


def seed(*, stdout) -> None:
    cluster = SimulatedCluster(ready_seconds=0)
    created = 0
    for index, (name, replicas, history) in enumerate(SERVICES):
        with transaction.atomic():
            service, made = Service.objects.get_or_create(
                name=name,
                defaults={
                    "namespace": NAMESPACE,
                    "image": f"registry.book2video.io/platform/{name}",
                    "replicas": replicas,
                    "stable_tag": history[0][0],
                    "secret_env": {"DATABASE_URL": f"{name}-secrets/database-url"},
                },
            )
            if made:
                created += 1
            metric_templates_ensure_defaults(service=service)
            metric_template_ensure(service=service, template=RENDER_SUCCESS_TEMPLATE)
            if not service.rollouts.exists():
                _history(service, history, days_ago=len(SERVICES) - index + 1)
            cluster.ensure_routing(service)
            cluster.ensure_stable(service)
    stdout.write(
        f"deployments: {Service.objects.count()} services ({created} new), "
        f"{Rollout.objects.count()} rollouts"
    )


def _history(service: Service, history, *, days_ago: int) -> None:
    rng = random.Random(service.name)
    start = timezone.now() - timedelta(days=days_ago)
    for n, (old, new, outcome) in enumerate(history):
        began = start + timedelta(hours=6 * n)
        rollout = Rollout.objects.create(
            service=service,
            image_tag=new,
            from_tag=old,
            steps=default_steps(),
            analysis=default_analysis(),
            status=outcome,
            phase=Phase.DONE,
            current_step=3 if outcome == "promoted" else 0,
            started_by_label="engineer",
            started_at=began,
            finished_at=began + timedelta(minutes=4 if outcome == "promoted" else 1),
            reason=(
                f"promoted: {service.name} runs {new}"
                if outcome == "promoted"
                else "canary failed analysis (error_rate): canary error_rate 24.1 > limit 5"
            ),
        )
        Rollout.objects.filter(pk=rollout.pk).update(created_at=began)
        _samples(service, rollout, began, fault="fault" in new, rng=rng)
        _last_checks(service, rollout)
        events = [
            ("start", f"rollout of {service.name} {old} → {new} requested"),
            ("progressing", "started"),
        ]
        weights = [10, 25, 50, 100] if outcome == "promoted" else [10]
        events += [
            ("step", f"step {i + 1}/4: canary at {w}% traffic") for i, w in enumerate(weights)
        ]
        events.append((outcome, rollout.reason))
        for k, (kind, message) in enumerate(events):
            event = RolloutEvent.objects.create(rollout=rollout, kind=kind, message=message)
            RolloutEvent.objects.filter(pk=event.pk).update(at=began + timedelta(seconds=15 * k))
        if outcome == "promoted":
            service.stable_tag = new
            service.save(update_fields=["stable_tag"])


def _last_checks(service: Service, rollout: Rollout) -> None:
    """The rollout's templates and its last check of each, from its last samples."""
    from deployments.judge import check, overall
    from deployments.metrics.templates import BUILTIN, FAIL, Measurement
    from deployments.services import service_metric_templates

    templates = service_metric_templates(service)
    last = {s.version: s for s in rollout.samples.order_by("at", "id")}
    checks, state = [], {}
    for t in templates:
        if t["name"] not in BUILTIN:
            continue  # other kinds were not measured by this history
        canary, stable = (getattr(last.get(v), t["name"], None) for v in ("canary", "stable"))
        result = check(t, Measurement(canary, stable), stable_serving=rollout.status != "promoted")
        failures = t["failure_limit"] if result["verdict"] == FAIL else 0
        state[t["name"]] = {
            "failures": failures,
            "inconclusive": 0,
            "at": last["canary"].at.isoformat(),
        }
        checks.append(
            {
                **result,
                "measured": True,
                "failures": failures,
                "failure_limit": t["failure_limit"],
                "inconclusive": 0,
                "inconclusive_limit": t["inconclusive_limit"],
            }
        )
    rollout.metrics = templates
    rollout.metric_state = state
    rollout.last_judgement = {"verdict": overall(checks), "checks": checks, "reasons": []}
    rollout.save(update_fields=["metrics", "metric_state", "last_judgement"])


def _samples(service, rollout, began, *, fault: bool, rng) -> None:
    count = 16 if not fault else 4
    rows = []
    for i in range(count):
        at = began + timedelta(seconds=15 * (i + 1))
        for version, tag in (("stable", rollout.from_tag), ("canary", rollout.image_tag)):
            bad = fault and version == "canary"
            canary_share = [10, 25, 50, 100][min(3, i // 4)]
            share = canary_share if version == "canary" else 100 - canary_share
            rows.append(
                MetricSample(
                    service=service,
                    rollout=rollout,
                    version=version,
                    image_tag=tag,
                    at=at,
                    request_rate=round(150 * share / 100 * rng.uniform(0.93, 1.07), 2),
                    error_rate=round(rng.uniform(20, 30) if bad else rng.uniform(0.2, 0.8), 3),
                    p99_ms=round(rng.uniform(150, 175), 1),
                    cpu_percent=round(rng.uniform(25, 45), 1),
                    memory_percent=round(rng.uniform(35, 55), 1),
                )
            )
    MetricSample.objects.bulk_create(rows)
