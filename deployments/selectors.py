"""Reads of the deployments area: services with their current rollout, rollouts, samples."""

import datetime as dt
from collections.abc import Collection

from django.db.models import Prefetch, Q, QuerySet

from deployments.metrics.base import METRICS
from deployments.models import (
    FINISHED,
    UNFINISHED,
    MetricSample,
    Phase,
    Rollout,
    RolloutEvent,
    RolloutStatus,
    Service,
    Version,
)


def rollout_actions(rollout: Rollout) -> list[str]:
    """The controls that fit the rollout's status (buttons shown, others answer 409)."""
    if rollout.status in FINISHED:
        return ["retry"] if rollout.status != RolloutStatus.PROMOTED else []
    if rollout.abort_requested or rollout.phase in (Phase.ROLLBACK, Phase.DONE):
        return []
    actions = ["abort"]
    if rollout.status == RolloutStatus.PAUSED:
        actions.insert(0, "resume")
    elif rollout.status == RolloutStatus.PROGRESSING:
        actions.insert(0, "pause")
    # At the confirm-promotion gate a person's Promote is the confirmation.
    at_gate = rollout.phase == Phase.PROMOTE and not rollout.promotion_confirmed
    if not rollout.promote_requested and (rollout.phase != Phase.PROMOTE or at_gate):
        actions.insert(-1, "promote")
    return actions


def sample_dict(sample: MetricSample) -> dict:
    return {
        "version": sample.version,
        "image_tag": sample.image_tag,
        "at": sample.at.isoformat(),
        **{m: getattr(sample, m) for m in METRICS},
        "values": sample.values or {m: getattr(sample, m) for m in METRICS},
    }


def event_dict(event: RolloutEvent) -> dict:
    return {
        "at": event.at.isoformat(),
        "kind": event.kind,
        "message": event.message,
        "actor": event.actor_label,
        "data": event.data,
    }


def rollout_hooks(rollout: Rollout) -> list[dict]:
    """The service's hooks with the last answer each gave during this rollout (None: not
    called yet). URLs are reduced to their host: a hook URL may carry a token."""
    from urllib.parse import urlsplit

    return [
        {
            "name": hook.name,
            "type": hook.type,
            "host": urlsplit(hook.url).hostname or "",
            "enabled": hook.enabled,
            "last": rollout.hook_state.get(hook.name),
        }
        for hook in rollout.service.hooks.order_by("type", "name")
    ]


def rollout_templates(rollout: Rollout) -> list[dict]:
    """The templates the rollout is judged by (the built-ins for one from before them)."""
    from deployments.metrics.templates import complete, templates_for_analysis

    return [complete(t) for t in rollout.metrics or templates_for_analysis(rollout.analysis)]


def rollout_metric_results(rollout: Rollout) -> list[dict]:
    """Each template with its latest check (verdict None until measured)."""
    checks = {c["metric"]: c for c in (rollout.last_judgement or {}).get("checks", [])}
    state = rollout.metric_state or {}
    out = []
    for t in rollout_templates(rollout):
        last = checks.get(t["name"]) or {}
        counts = state.get(t["name"]) or {}
        out.append(
            {
                "name": t["name"],
                "kind": t["kind"],
                "unit": t["unit"],
                "min_value": t["min_value"],
                "max_value": t["max_value"],
                "direction": t["direction"],
                "dry_run": t["dry_run"],
                "enabled": t["enabled"],
                "verdict": last.get("verdict"),
                "value": last.get("value"),
                "stable": last.get("stable"),
                "why": last.get("why", ""),
                "failures": counts.get("failures", 0),
                "failure_limit": t["failure_limit"],
                "inconclusive": counts.get("inconclusive", 0),
                "inconclusive_limit": t["inconclusive_limit"],
                "at": counts.get("at"),
                "detail": last.get("detail") or {},
            }
        )
    return out


def latest_samples(rollout: Rollout) -> dict:
    out = {}
    for version in Version.values:
        sample = rollout.samples.filter(version=version).order_by("-at", "-id").first()
        out[version] = sample_dict(sample) if sample else None
    return out


def rollout_samples(rollout: Rollout, *, limit: int = 500) -> list[dict]:
    rows = rollout.samples.order_by("-at", "-id")[:limit]
    return [sample_dict(s) for s in reversed(list(rows))]


def rollout_list(*, service: str = "", status: str = "") -> QuerySet[Rollout]:
    qs = Rollout.objects.select_related("service").order_by("-created_at", "-id")
    if service:
        qs = qs.filter(service__name=service)
    if status:
        qs = qs.filter(status=status)
    return qs


def rollout_get(pk: int) -> Rollout:
    from django.shortcuts import get_object_or_404

    return get_object_or_404(Rollout.objects.select_related("service"), pk=pk)


def service_list(*, namespace: str = "", status: str = "") -> list[Service]:
    """Services with `current` (unfinished rollout or None) and `last` (last finished one)."""
    unfinished = Rollout.objects.filter(status__in=UNFINISHED)
    qs = Service.objects.prefetch_related(
        Prefetch("rollouts", queryset=unfinished, to_attr="unfinished_rollouts")
    ).order_by("namespace", "name")
    if namespace:
        qs = qs.filter(namespace=namespace)
    services = list(qs)
    last = {}
    for r in Rollout.objects.filter(status__in=FINISHED).order_by("service_id", "-finished_at"):
        last.setdefault(r.service_id, r)
    for s in services:
        s.current = s.unfinished_rollouts[0] if s.unfinished_rollouts else None
        s.last = last.get(s.pk)
    if status == "idle":
        services = [s for s in services if s.current is None]
    elif status:
        services = [s for s in services if s.current is not None and s.current.status == status]
    return services


def namespaces() -> list[str]:
    return list(
        Service.objects.order_by("namespace").values_list("namespace", flat=True).distinct()
    )


def step_remaining_seconds(rollout: Rollout, now) -> float | None:
    """Seconds until the current step's analysis completes (or its pause ends), if known."""
    if rollout.status == RolloutStatus.PAUSED:
        return (rollout.pause_until - now).total_seconds() if rollout.pause_until else None
    if rollout.phase != Phase.ANALYZE or rollout.step_started_at is None:
        return None
    interval = float(rollout.analysis["interval_seconds"])
    left = rollout.analysis["samples_per_step"] - rollout.samples_in_step
    base = rollout.last_sample_at or rollout.step_started_at
    return max(0.0, (base - now).total_seconds() + interval * left)


def step_samples(rollout: Rollout) -> tuple[dict[str, list], dict[str, list]]:
    """Canary and stable values of each template sampled since the current step began."""
    rows = MetricSample.objects.filter(rollout=rollout)
    if rollout.step_started_at is not None:
        rows = rows.filter(at__gte=rollout.step_started_at)
    series: dict[str, dict[str, list]] = {Version.CANARY: {}, Version.STABLE: {}}
    for row in rows.values("version", "values", *METRICS):
        values = row["values"] or {m: row[m] for m in METRICS}  # rows from before templates
        for name, value in values.items():
            if value is not None:
                series[row["version"]].setdefault(name, []).append(value)
    return series[Version.CANARY], series[Version.STABLE]


ROLLED_BACK_STATUSES = (RolloutStatus.ROLLED_BACK, RolloutStatus.ABORTED, RolloutStatus.FAILED)


def release_markers(
    *,
    start: dt.datetime,
    end: dt.datetime,
    services: Collection[str] | None = None,
    limit: int = 100,
) -> list[dict]:
    """Rollout starts, promotions and rollbacks (rolled back, aborted or failed: traffic back on
    stable) in [start, end), oldest first, of `services` (names) when given, for the
    annotations of time-series charts and the release warnings of experiment readouts."""
    rollouts = Rollout.objects.select_related("service").filter(
        Q(started_at__gte=start, started_at__lt=end)
        | Q(finished_at__gte=start, finished_at__lt=end)
    )
    if services is not None:
        rollouts = rollouts.filter(service__name__in=list(services))
    markers = []
    for r in rollouts:
        name = f"{r.service.name}:{r.image_tag}"
        about = {"service": r.service.name, "image_tag": r.image_tag, "rollout": r.pk}
        if r.started_at and start <= r.started_at < end:
            markers.append(
                {"at": r.started_at, "kind": "start", "label": f"{name} started", **about}
            )
        if r.finished_at and start <= r.finished_at < end:
            if r.status == RolloutStatus.PROMOTED:
                markers.append(
                    {"at": r.finished_at, "kind": "promoted", "label": f"{name} promoted", **about}
                )
            elif r.status in ROLLED_BACK_STATUSES:
                markers.append(
                    {
                        "at": r.finished_at,
                        "kind": "rollback",
                        "label": f"{name} {r.status}",
                        **about,
                    }
                )
    markers.sort(key=lambda m: m["at"])
    return [{**m, "at": m["at"].isoformat()} for m in markers[-limit:]]


def service_names() -> list[str]:
    return list(Service.objects.order_by("name").values_list("name", flat=True))
