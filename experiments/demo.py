"""Demo experiments: one running with data, one concluded with a winner, one with an SRM.

Idempotent: experiments are created once, and their events are written only when the store
holds none for that experiment key.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from analytics.catalog import Event
from experiments.models import Experiment, Metric, Variant
from experiments.services import experiment_evaluate, experiment_start
from experiments.simulation import (
    Outcome,
    events_insert,
    exposure_events_exist,
    simulated_events,
)

METRICS = [
    {
        "key": "project-created-7d",
        "name": "Project created",
        "kind": Metric.Kind.CONVERSION,
        "event": Event.PROJECT_CREATED,
        "window_days": 7,
    },
    {
        "key": "subscription-started-7d",
        "name": "Subscription started",
        "kind": Metric.Kind.CONVERSION,
        "event": Event.SUBSCRIPTION_STARTED,
        "window_days": 7,
    },
    {
        "key": "revenue-7d",
        "name": "Revenue per user",
        "kind": Metric.Kind.MEAN,
        "event": Event.PAYMENT,
        "value_property": "amount",
        "window_days": 7,
    },
    {
        "key": "support-ticket-7d",
        "name": "Support ticket",
        "kind": Metric.Kind.CONVERSION,
        "event": Event.SUPPORT_TICKET,
        "window_days": 7,
        "direction": Metric.Direction.DECREASE,
    },
]

# key, name, hypothesis, primary, secondary, guardrails, days running, minimum runtime,
# users, outcomes per variant (control first), lost exposures
EXPERIMENTS = [
    {
        "key": "onboarding-checklist",
        "name": "Onboarding checklist",
        "hypothesis": "A checklist on the first screen gets more new users to create a project.",
        "primary": "project-created-7d",
        "secondary": ["revenue-7d"],
        "guardrails": ["support-ticket-7d"],
        "days": 9,
        "minimum_runtime_days": 14,
        "users": 9000,
        "outcomes": [
            (Event.PROJECT_CREATED, {"control": 0.20, "checklist": 0.215}, "", {}),
            (
                Event.PAYMENT,
                {"control": 0.08, "checklist": 0.085},
                "amount",
                {"control": 20.0, "checklist": 20.0},
            ),
            (Event.SUPPORT_TICKET, {"control": 0.03, "checklist": 0.03}, "", {}),
        ],
        "lost": {},
    },
    {
        "key": "annual-plan-default",
        "name": "Annual plan selected by default",
        "hypothesis": "Pre-selecting the annual plan on the pricing page raises subscriptions.",
        "primary": "subscription-started-7d",
        "secondary": ["revenue-7d"],
        "guardrails": ["support-ticket-7d"],
        "days": 21,
        "minimum_runtime_days": 14,
        "users": 12000,
        "outcomes": [
            (Event.SUBSCRIPTION_STARTED, {"control": 0.08, "annual": 0.11}, "", {}),
            (
                Event.PAYMENT,
                {"control": 0.08, "annual": 0.11},
                "amount",
                {"control": 25.0, "annual": 27.0},
            ),
            (Event.SUPPORT_TICKET, {"control": 0.03, "annual": 0.03}, "", {}),
        ],
        "lost": {},
    },
    {
        "key": "video-style-picker",
        "name": "Video style picker redesign",
        "hypothesis": "A visual style picker makes more users finish their first video.",
        "primary": "project-created-7d",
        "secondary": [],
        "guardrails": ["support-ticket-7d"],
        "days": 6,
        "minimum_runtime_days": 7,
        "users": 8000,
        "outcomes": [
            (Event.PROJECT_CREATED, {"control": 0.20, "picker": 0.21}, "", {}),
            (Event.SUPPORT_TICKET, {"control": 0.03, "picker": 0.03}, "", {}),
        ],
        "lost": {"picker": 0.12},  # the new picker dropped some exposure events
    },
]


def _metrics() -> dict[str, Metric]:
    out = {}
    for spec in METRICS:
        metric, _ = Metric.objects.get_or_create(key=spec["key"], defaults=spec)
        out[metric.key] = metric
    return out


@transaction.atomic
def _create(spec: dict, metrics: dict[str, Metric], variant_keys: list[str]) -> Experiment:
    experiment = Experiment.objects.create(
        key=spec["key"],
        name=spec["name"],
        hypothesis=spec["hypothesis"],
        primary_metric=metrics[spec["primary"]],
        minimum_runtime_days=spec["minimum_runtime_days"],
    )
    experiment.secondary_metrics.set([metrics[k] for k in spec["secondary"]])
    experiment.guardrail_metrics.set([metrics[k] for k in spec["guardrails"]])
    for i, key in enumerate(variant_keys):
        Variant.objects.create(
            experiment=experiment, key=key, name=key.title(), weight=0.5, is_control=i == 0
        )
    return experiment


def seed(*, stdout) -> None:
    metrics = _metrics()
    admin = get_user_model().objects.filter(username="admin").first()
    for index, spec in enumerate(EXPERIMENTS):
        variant_keys = list(spec["outcomes"][0][1])
        experiment = Experiment.objects.filter(key=spec["key"]).first()
        if experiment is None:
            experiment = _create(spec, metrics, variant_keys)
        if experiment.status == Experiment.Status.DRAFT:
            experiment = experiment_start(experiment=experiment, by=admin)
            # Demo only: pretend it started days ago so its data spans a realistic period.
            started = timezone.now() - dt.timedelta(days=spec["days"])
            # Demo only: planned for the demo's own traffic, so the always-valid interval is
            # tuned to the sample the demo actually has (the measured baseline would plan for
            # the whole product's traffic and leave every demo experiment undecided).
            Experiment.objects.filter(pk=experiment.pk).update(
                started_at=started, sequential_tuning=float(spec["users"])
            )
            experiment.refresh_from_db()
        if not exposure_events_exist(experiment.key):
            rows = simulated_events(
                key=experiment.key,
                seed=experiment.seed,
                variant_keys=variant_keys,
                weights=[0.5, 0.5],
                users=spec["users"],
                start=experiment.started_at,
                days=spec["days"],
                outcomes=[Outcome(e, r, p, m) for e, r, p, m in spec["outcomes"]],
                lost_exposures=spec["lost"],
                user_prefix=f"demo-x{index}",
                rng=np.random.default_rng(100 + index),
            )
            events_insert(rows)
            stdout.write(f"experiments: {experiment.key}: {len(rows)} events")
        if experiment.status == Experiment.Status.RUNNING:
            experiment = experiment_evaluate(experiment_id=experiment.pk)
        stdout.write(f"experiments: {experiment.key} is {experiment.status}")
