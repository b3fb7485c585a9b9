"""Demo experiments: one running with data, one concluded with a winner, one with an SRM, and
a holdout kept out of the first two.

Idempotent: experiments are created once, and their events are written only when the store
holds none for that experiment key.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from analytics.catalog import TIER_MRR, Event
from analytics.store import store
from analytics.store.bulk import rows_insert
from experiments.assignment import RunningHoldout
from experiments.models import (
    HOLDOUT_CONTROL,
    HOLDOUT_GROUPS,
    HOLDOUT_TREATMENT,
    Experiment,
    Holdout,
    Metric,
    Variant,
)
from experiments.services import experiment_evaluate, experiment_start, holdout_start
from experiments.simulation import (
    Outcome,
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
        "capping": Metric.Capping.PERCENTILE,  # a few annual plans would dominate the mean
        "cap_value": 0.99,
    },
    {
        "key": "render-time-p90-7d",
        "name": "Render time p90 (seconds)",
        "kind": Metric.Kind.QUANTILE,
        "event": Event.VIDEO_COMPLETED,
        "value_property": "processing_seconds",
        "quantile": 0.9,
        "quantile_scope": Metric.QuantileScope.EVENT,
        "window_days": 7,
        "direction": Metric.Direction.DECREASE,
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

# key, name, hypothesis, primary, secondary, guardrails, days running, minimum runtime, who
# is exposed (the product's users active since the start, or only its free ones), outcomes per
# variant (control first) and lost exposures.
#
# The users are the product demo's own (analytics/demo.py), exposed at their first session
# after the start, so the experiments add no users of their own to the product pages. Their
# outcome rates are what each variant adds to what those users do anyway (about 55-60 % create
# a project within 7 days of a session, 2.6 % of free users subscribe, 4 % open a ticket).
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
        "audience": "all",
        "outcomes": [(Event.PROJECT_CREATED, {"control": 0.0, "checklist": 0.06}, "", {}, {})],
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
        "audience": "free",  # the pricing page is what free users see
        "engine": "bayesian",  # the demo shows both engines' readouts
        "outcomes": [
            (
                Event.SUBSCRIPTION_STARTED,
                {"control": 0.0, "annual": 0.03},
                "",
                {},
                {"tier": "pro", "mrr": TIER_MRR["pro"], "plan": "annual"},
            )
        ],
        "lost": {},
    },
    {
        "key": "video-style-picker",
        "name": "Video style picker redesign",
        "hypothesis": "A visual style picker makes more users finish their first video.",
        "primary": "project-created-7d",
        "secondary": ["render-time-p90-7d"],
        "guardrails": ["support-ticket-7d"],
        "days": 6,
        "minimum_runtime_days": 7,
        "audience": "all",
        "outcomes": [(Event.PROJECT_CREATED, {"control": 0.0, "picker": 0.01}, "", {}, {})],
        "lost": {"picker": 0.12},  # the new picker dropped some exposure events
        # the picker's previews are rendered: the demo's video-renderer rollouts (3 days ago)
        # fall inside this experiment, so its readout warns
        "depends_on": ["video-renderer"],
    },
]


# The holdout covers the two experiments below from before they start; its general population
# sample gets those experiments' events like everyone, and (the winners shipped meanwhile and
# other work it covers) a little more of both goals than the held users.
HOLDOUT = {
    "key": "h2-holdout",
    "name": "Second-half holdout",
    "description": "Measures what the onboarding and pricing experiments add together.",
    "percentage": 0.15,
    "experiments": ["onboarding-checklist", "annual-plan-default"],
    "metrics": ["project-created-7d", "subscription-started-7d", "revenue-7d"],
    "outcomes": [
        Outcome(Event.PROJECT_CREATED, {HOLDOUT_CONTROL: 0.0, HOLDOUT_TREATMENT: 0.15}),
        Outcome(
            Event.SUBSCRIPTION_STARTED,
            {HOLDOUT_CONTROL: 0.0, HOLDOUT_TREATMENT: 0.015},
            properties={"tier": "pro", "mrr": TIER_MRR["pro"], "plan": "monthly"},
        ),
    ],
}


def _holdout(metrics: dict[str, Metric]) -> Holdout:
    holdout, created = Holdout.objects.get_or_create(
        key=HOLDOUT["key"],
        defaults={
            "name": HOLDOUT["name"],
            "description": HOLDOUT["description"],
            "percentage": HOLDOUT["percentage"],
        },
    )
    if created:
        holdout.metrics.set([metrics[k] for k in HOLDOUT["metrics"]])
    return holdout


def _holdout_cover(holdout: Holdout, experiment: Experiment, *, by) -> Holdout:
    """Cover a demo experiment still in draft, and start the holdout before it starts."""
    if experiment.key not in HOLDOUT["experiments"] or experiment.has_started:
        return holdout
    if holdout.status == Holdout.Status.ENDED:
        return holdout
    holdout.experiments.add(experiment)
    if holdout.status == Holdout.Status.DRAFT:
        holdout = holdout_start(holdout=holdout, by=by)
    return holdout


def _not_held(holdout: Holdout, key: str, audience: list) -> list:
    if key not in set(holdout.experiments.values_list("key", flat=True)):
        return audience
    running = RunningHoldout.from_model(holdout)
    return [(u, at) for u, at in audience if running.group_for(u) != HOLDOUT_CONTROL]


def _holdout_events(holdout: Holdout, *, stdout) -> None:
    if not holdout.started_at or exposure_events_exist(holdout.tracking_key):
        return
    running = RunningHoldout.from_model(holdout)
    # Exposed at their first session since the start, when a covered experiment evaluates them.
    everyone, enrichment = _audience(holdout.started_at, free_only=False)
    audience = [(u, at) for u, at in everyone if running.group_for(u)]
    rows = simulated_events(
        key=holdout.tracking_key,
        seed=holdout.seed,  # the users chosen above keep their group under these ranges
        variant_keys=list(HOLDOUT_GROUPS),
        weights=[0.5, 0.5],
        audience=audience,
        outcomes=HOLDOUT["outcomes"],
        rng=np.random.default_rng(200),
        exposure_properties=enrichment,
    )
    rows_insert(table="events", rows=rows)
    stdout.write(
        f"experiments: holdout {holdout.key}: {len(rows)} events for {len(audience):,} users"
    )


def _audience(
    since: dt.datetime, *, free_only: bool
) -> tuple[list[tuple[str, dt.datetime]], dict[str, dict]]:
    """The product's users with a session since `since`, each at their first one (by user id),
    and what capture's enrichment puts on an event of that session (country, device, tier);
    `free_only`: those on the free tier then."""
    rows = store().query(
        "SELECT user_id, min(timestamp) AS at, argMin(user_tier, timestamp) AS tier, "
        "argMin(country, timestamp) AS country, argMin(device_type, timestamp) AS device "
        "FROM events WHERE event = {session:String} "
        "AND timestamp >= toDateTime64({since:String}, 3, 'UTC') "
        "GROUP BY user_id ORDER BY user_id",
        {"session": Event.SESSION_START.value, "since": since.strftime("%Y-%m-%d %H:%M:%S")},
    )
    chosen = [r for r in rows if not free_only or r["tier"] in ("free", "")]
    enrichment = {
        r["user_id"]: {
            k: v
            for k, v in (
                ("geo_country", r["country"]),
                ("device_type", r["device"]),
                ("user_tier", r["tier"]),
            )
            if v
        }
        for r in chosen
    }
    return [(r["user_id"], _utc(r["at"])) for r in chosen], enrichment


def _utc(value) -> dt.datetime:
    """A DateTime64 from either store: text from chdb's JSON, a datetime from the driver."""
    at = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
    return at.astimezone(dt.UTC) if at.tzinfo else at.replace(tzinfo=dt.UTC)


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
        engine=spec.get("engine", Experiment.Engine.FREQUENTIST),
        # Pre-registered splits (set before the start); any other is read with a warning.
        dimensions=["country", "device_type"],
        depends_on_services=spec.get("depends_on", []),
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
    holdout = _holdout(metrics)
    for index, spec in enumerate(EXPERIMENTS):
        variant_keys = list(spec["outcomes"][0][1])
        experiment = Experiment.objects.filter(key=spec["key"]).first()
        if experiment is None:
            experiment = _create(spec, metrics, variant_keys)
        elif spec.get("depends_on") and not experiment.depends_on_services:
            Experiment.objects.filter(pk=experiment.pk).update(
                depends_on_services=spec["depends_on"]
            )
        holdout = _holdout_cover(holdout, experiment, by=admin)
        if experiment.status == Experiment.Status.DRAFT:
            experiment = experiment_start(experiment=experiment, by=admin)
            # Demo only: pretend it started days ago so its data spans a realistic period.
            started = timezone.now() - dt.timedelta(days=spec["days"])
            Experiment.objects.filter(pk=experiment.pk).update(started_at=started)
            experiment.refresh_from_db()
        if not exposure_events_exist(experiment.key):
            audience, enrichment = _audience(
                experiment.started_at, free_only=spec["audience"] == "free"
            )
            audience = _not_held(holdout, experiment.key, audience)
            # Demo only: planned for the demo's own traffic, so the always-valid interval is
            # tuned to the sample the demo actually has (the measured baseline would plan for
            # the whole product's traffic and leave every demo experiment undecided).
            Experiment.objects.filter(pk=experiment.pk).update(
                sequential_tuning=float(max(len(audience), 1))
            )
            experiment.refresh_from_db()
            rows = simulated_events(
                key=experiment.key,
                seed=experiment.seed,
                variant_keys=variant_keys,
                weights=[0.5, 0.5],
                audience=audience,
                outcomes=[Outcome(e, r, p, m, x) for e, r, p, m, x in spec["outcomes"]],
                lost_exposures=spec["lost"],
                rng=np.random.default_rng(100 + index),
                exposure_properties=enrichment,
            )
            rows_insert(table="events", rows=rows)
            stdout.write(
                f"experiments: {experiment.key}: {len(rows)} events for {len(audience):,} "
                "of the product's users"
            )
        if experiment.status == Experiment.Status.RUNNING:
            experiment = experiment_evaluate(experiment_id=experiment.pk)
        stdout.write(f"experiments: {experiment.key} is {experiment.status}")
    if holdout.started_at and holdout.started_at > _min_started(holdout):
        # Demo only: started with its first covered experiment, days ago.
        Holdout.objects.filter(pk=holdout.pk).update(started_at=_min_started(holdout))
        holdout.refresh_from_db()
    _holdout_events(holdout, stdout=stdout)
    stdout.write(f"experiments: holdout {holdout.key} is {holdout.status}")


def _min_started(holdout: Holdout) -> dt.datetime:
    starts = [e.started_at for e in holdout.experiments.all() if e.started_at]
    return min(starts, default=holdout.started_at)
