"""Every write of the deployments area: services, rollout starts and controls, publishing.

The engine's ticks live in `engine.py`; both publish to the channel groups through
`rollout_publish`, after the transaction commits.
"""

from datetime import timedelta

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.consumers import relay_envelope
from core.errors import DomainError, InvalidRequest, StateConflict, Unprocessable
from core.services import actor_label, audit_record
from deployments.matching import MatchError, validate_rules
from deployments.metrics import templates as metric_templates
from deployments.models import (
    UNFINISHED,
    MetricSample,
    MetricTemplate,
    Phase,
    Rollout,
    RolloutEvent,
    RolloutStatus,
    Service,
    default_analysis,
    default_steps,
)
from deployments.notify import NOTIFIED, providers_for

LIST_GROUP = "rollouts"


class RolloutConflict(DomainError):
    code = "rollout_conflict"


class RolloutStateError(DomainError):
    code = "rollout_state"


def rollout_group(rollout_id: int) -> str:
    return f"rollout_{rollout_id}"


# Publishing -------------------------------------------------------------------------------


def rollout_status_message(rollout: Rollout) -> dict:
    from deployments.selectors import rollout_actions

    return {
        "type": "status",
        "rollout": rollout.pk,
        "service": rollout.service.name,
        "image_tag": rollout.image_tag,
        "status": rollout.status,
        "phase": rollout.phase,
        "current_step": rollout.current_step,
        "current_weight": rollout.current_weight,
        "samples_in_step": rollout.samples_in_step,
        "step_started_at": _iso(rollout.step_started_at),
        "pause_until": _iso(rollout.pause_until),
        "next_tick_at": _iso(rollout.next_tick_at),
        "reason": rollout.reason,
        "judgement": rollout.last_judgement,
        "actions": rollout_actions(rollout),
        "finished_at": _iso(rollout.finished_at),
    }


def sample_message(sample: MetricSample) -> dict:
    from deployments.selectors import sample_dict

    return {"type": "sample", "rollout": sample.rollout_id, **sample_dict(sample)}


def event_message(event: RolloutEvent) -> dict:
    from deployments.selectors import event_dict

    return {"type": "event", "rollout": event.rollout_id, "event": event_dict(event)}


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def rollout_publish(*, rollout_id: int, messages: list[dict]) -> None:
    """Send messages to the rollout's group (and status messages to the list group) on commit."""
    if not messages:
        return

    def send():
        layer = get_channel_layer()
        if layer is None:
            return

        async def fan_out():
            for message in messages:
                envelope = relay_envelope(message)
                await layer.group_send(rollout_group(rollout_id), envelope)
                if message["type"] == "status":
                    await layer.group_send(LIST_GROUP, envelope)

        async_to_sync(fan_out)()

    # robust: a channel layer hiccup is logged and never undoes or breaks a committed change.
    transaction.on_commit(send, robust=True)


def rollout_event(
    *, rollout: Rollout, kind: str, message: str, actor=None, data: dict | None = None, audit=True
) -> RolloutEvent:
    """A timeline row (published); transitions also leave an audit entry."""
    event = RolloutEvent.objects.create(
        rollout=rollout,
        kind=kind,
        message=message,
        actor_label=actor_label(actor) if actor is not None else "engine",
        data=data or {},
    )
    if audit:
        audit_record(actor=actor, action=f"rollout.{kind}", target=rollout, detail=message)
    rollout_publish(rollout_id=rollout.pk, messages=[event_message(event)])
    if kind in NOTIFIED:
        rollout_notify_schedule(event=event)
    return event


def rollout_notify_schedule(*, event: RolloutEvent) -> None:
    """One task per alert provider that wants the event, enqueued once the event is committed."""
    provider_ids = [p.pk for p in providers_for(event)]
    if not provider_ids:
        return

    def enqueue():
        from deployments.tasks import send_rollout_notification

        for provider_id in provider_ids:
            send_rollout_notification.delay(event.pk, provider_id)

    transaction.on_commit(enqueue, robust=True)


def rollout_post_hooks_schedule(*, rollout_id: int) -> None:
    """Run the post-rollout hooks from a task once the finished rollout is committed."""

    def enqueue():
        from deployments.tasks import run_post_rollout_hooks

        run_post_rollout_hooks.delay(rollout_id)

    transaction.on_commit(enqueue, robust=True)


def rollout_post_hooks(*, rollout_id: int) -> None:
    """Call the post-rollout hooks of a finished rollout and log their answers (they decide
    nothing). Idempotent enough: a second run calls the hooks again, as Flagger may."""
    from deployments.hooks import hooks_run

    rollout = Rollout.objects.select_related("service").get(pk=rollout_id)
    if not rollout.is_finished:
        return
    phase = "Succeeded" if rollout.status == RolloutStatus.PROMOTED else "Failed"
    results = hooks_run(rollout, "post-rollout", phase=phase)
    with transaction.atomic():
        locked = _locked(rollout)
        locked.hook_state = {**locked.hook_state, **rollout.hook_state}
        locked.save(update_fields=["hook_state", "updated_at"])
        for result in results:
            rollout_event(
                rollout=locked,
                kind="hook" if result.ok else "hook_failed",
                message=result.summary(),
                data={"hooks": [result.name]},
                audit=False,
            )


def rollout_schedule(*, rollout: Rollout, delay: float | None) -> None:
    """Plan the next tick in `delay` seconds (None: none until someone acts).

    Each plan gets a new token; a tick carrying an older token is stale and does nothing, so
    a control that ticks at once never leaves two chains of ticks running.
    """
    rollout.tick_seq += 1
    if delay is None or rollout.is_finished:
        rollout.next_tick_at = None
        return
    delay = max(0.0, float(delay))
    rollout.next_tick_at = timezone.now() + timedelta(seconds=delay)
    rollout_id, token = rollout.pk, rollout.tick_seq

    def enqueue():
        from deployments.tasks import advance_rollout

        advance_rollout.apply_async((rollout_id, token), countdown=delay)

    # robust: if the broker is down the change stays saved; the beat safety net ticks it later.
    transaction.on_commit(enqueue, robust=True)


# Services ---------------------------------------------------------------------------------

SERVICE_FIELDS = (
    "namespace",
    "image",
    "port",
    "replicas",
    "cpu_request",
    "cpu_limit",
    "memory_request",
    "memory_limit",
    "stable_tag",
    "secret_env",
    "default_steps",
    "default_analysis",
)


@transaction.atomic
def service_create(
    *, by, name: str, metric_templates: list[dict] | None = None, **fields
) -> Service:
    if Service.objects.filter(name=name).exists():
        raise StateConflict("name", f"a service named {name!r} already exists")
    service = Service.objects.create(
        name=name, **{k: v for k, v in fields.items() if k in SERVICE_FIELDS}
    )
    if metric_templates is None:
        metric_templates_ensure_defaults(service=service)
    else:
        service_metric_templates_set(service=service, templates=metric_templates, by=None)
    audit_record(actor=by, action="service.create", target=service)
    return service


def metric_templates_ensure_defaults(*, service: Service) -> int:
    """Give the service the built-in templates it lacks (by name); returns how many."""
    have = set(service.metric_templates.values_list("name", flat=True))
    missing = [
        MetricTemplate(service=service, **t)
        for t in metric_templates.default_templates()
        if t["name"] not in have
    ]
    MetricTemplate.objects.bulk_create(missing)
    return len(missing)


def metric_template_ensure(*, service: Service, template: dict) -> bool:
    """Give the service this template unless it has one of that name; True when added. The
    demo services get the product metric this way (metrics/store.py RENDER_SUCCESS_TEMPLATE)."""
    fields = {k: v for k, v in template.items() if k != "name"}
    _, made = MetricTemplate.objects.get_or_create(
        service=service, name=template["name"], defaults=fields
    )
    return made


def service_metric_templates_set(*, service: Service, templates: list[dict], by) -> list[str]:
    """Make `templates` the service's set: an entry naming a template it has changes the fields
    given, one naming none adds a template (defaults fill the rest), templates not named go.
    Validated as a whole first, merged with what the service has: a rule the schema cannot
    state (422 naming `metric_templates`). Returns the names changed."""
    existing = {t.name: t for t in service.metric_templates.all()}
    wanted = metric_templates.apply_overrides(
        [existing[o["name"]].as_dict() for o in templates if o["name"] in existing],
        templates,
    )
    for template in wanted:
        problems = metric_templates.validate(template)
        if problems:
            key, problem = next(iter(problems.items()))
            raise Unprocessable("metric_templates", f"{template['name']}: {key} {problem}")
    changed = sorted(set(existing) - {t["name"] for t in wanted})
    service.metric_templates.exclude(name__in=[t["name"] for t in wanted]).delete()
    for template in wanted:
        row = existing.get(template["name"])
        if row is None:
            MetricTemplate.objects.create(service=service, **template)
            changed.append(template["name"])
        elif row.as_dict() != template:
            MetricTemplate.objects.filter(pk=row.pk).update(**template)
            changed.append(template["name"])
    if changed and by is not None:
        audit_record(
            actor=by,
            action="service.metric_templates",
            target=service,
            detail=", ".join(sorted(changed)),
        )
    return changed


def service_metric_templates(service: Service) -> list[dict]:
    """The service's templates as dicts, the built-ins when it has none."""
    rows = [t.as_dict() for t in service.metric_templates.order_by("id")]
    return rows or metric_templates.default_templates()


def rollout_metric_templates(
    *, service: Service, analysis: dict, overrides: list[dict] | None
) -> list[dict]:
    """The templates a new rollout is judged by: the service's, changed by the explicit
    analysis settings that stand for them, then by the request's overrides (validated)."""
    templates = metric_templates.apply_analysis(service_metric_templates(service), analysis)
    templates = metric_templates.apply_overrides(templates, overrides or [])
    for template in templates:
        problems = metric_templates.validate(template)
        if problems:
            key, problem = next(iter(problems.items()))
            raise Unprocessable("metrics", f"{template['name']}: {key} {problem}")
    return templates


@transaction.atomic
def service_update(
    *, service: Service, by, metric_templates: list[dict] | None = None, **fields
) -> Service:
    if metric_templates is not None:
        service_metric_templates_set(service=service, templates=metric_templates, by=by)
    changed = []
    for key, value in fields.items():
        if key in SERVICE_FIELDS and getattr(service, key) != value:
            setattr(service, key, value)
            changed.append(key)
    if changed:
        service.save()
        audit_record(
            actor=by, action="service.update", target=service, detail=", ".join(sorted(changed))
        )
    return service


# Rollouts ---------------------------------------------------------------------------------


def normalize_steps(steps) -> list[dict]:
    """Steps as [{"weight": w, "pause": None | seconds | "indefinite"}]; ints are weights."""
    return [
        {"weight": s, "pause": None} if isinstance(s, int) else {"pause": None, **s} for s in steps
    ]


def _reverted_promotion(*, service: Service, image_tag: str) -> Rollout | None:
    """The promotion that replaced `image_tag` with the current stable tag within the fast
    rollback window, if there is one."""
    window = settings.ROLLOUT_FAST_ROLLBACK_SECONDS
    if window <= 0:
        return None
    last = (
        Rollout.objects.filter(service=service, status=RolloutStatus.PROMOTED)
        .order_by("-finished_at", "-id")
        .first()
    )
    if (
        last is None
        or last.image_tag != service.stable_tag
        or last.from_tag != image_tag
        or last.finished_at is None
        or last.finished_at < timezone.now() - timedelta(seconds=window)
    ):
        return None
    return last


def rollout_start(
    *,
    service: Service,
    image_tag: str,
    by,
    steps: list | None = None,
    analysis: dict | None = None,
    match: list | None = None,
    metrics: list[dict] | None = None,
    retry_of: Rollout | None = None,
) -> Rollout:
    """Save a pending rollout and tick it on commit; 409 when the service has one unfinished.

    `match` rules (deployments/matching.py) send matching requests to canary at every step;
    with them a step may have weight 0 (only matching requests reach canary: Flagger's A/B mode).
    `metrics` overrides the service's metric templates for this rollout (by name) or adds some.
    """
    settings_analysis = {
        **default_analysis(),
        **(service.default_analysis or {}),
        **(analysis or {}),
    }
    if (
        settings_analysis.get("judge") == "statistical"
        and settings_analysis["samples_per_step"] < 3
    ):
        raise Unprocessable(
            "analysis", "the statistical judge needs samples_per_step of at least 3"
        )
    chosen_steps = normalize_steps(steps or service.default_steps or default_steps())
    chosen_metrics = rollout_metric_templates(
        service=service,
        analysis={**(service.default_analysis or {}), **(analysis or {})},
        overrides=metrics,
    )
    try:
        match = validate_rules(match)
    except MatchError as exc:
        raise InvalidRequest("match", str(exc)) from None
    if not match and any(step["weight"] == 0 for step in chosen_steps):
        raise Unprocessable("steps", "a step of weight 0 needs match rules (who reaches canary)")
    if image_tag == service.stable_tag:
        raise StateConflict("image_tag", f"{image_tag!r} is already the stable version")
    reverts = _reverted_promotion(service=service, image_tag=image_tag)
    if reverts is not None:
        chosen_steps = [{"weight": 100, "pause": None}]
    try:
        with transaction.atomic():
            if Rollout.objects.filter(service=service, status__in=UNFINISHED).exists():
                raise RolloutConflict(f"service {service.name} already has an unfinished rollout")
            rollout = Rollout.objects.create(
                service=service,
                image_tag=image_tag,
                from_tag=service.stable_tag,
                steps=chosen_steps,
                analysis=settings_analysis,
                metrics=chosen_metrics,
                match=match,
                started_by=by if getattr(by, "is_authenticated", False) else None,
                started_by_label=actor_label(by),
                retry_of=retry_of,
                reverts=reverts,
            )
            rollout_event(
                rollout=rollout,
                kind="start",
                message=f"rollout of {service.name} {service.stable_tag} → {image_tag} requested"
                + (
                    f" (fast rollback of rollout #{reverts.pk}: steps and analysis skipped)"
                    if reverts
                    else ""
                ),
                actor=by,
            )
            rollout_schedule(rollout=rollout, delay=0)
            rollout.save(update_fields=["tick_seq", "next_tick_at"])
            rollout_publish(rollout_id=rollout.pk, messages=[rollout_status_message(rollout)])
    except IntegrityError as exc:
        # Two starts raced past the check: the partial unique index let one of them in.
        raise RolloutConflict(f"service {service.name} already has an unfinished rollout") from exc
    return rollout


def _locked(rollout: Rollout) -> Rollout:
    return Rollout.objects.select_for_update().select_related("service").get(pk=rollout.pk)


def _control(rollout: Rollout, *, action: str, by, reason: str, message: str) -> Rollout:
    rollout_event(
        rollout=rollout,
        kind=action,
        message=message + (f": {reason}" if reason else ""),
        actor=by,
    )
    rollout_schedule(rollout=rollout, delay=0 if rollout.status != RolloutStatus.PAUSED else None)
    rollout.save()
    rollout_publish(rollout_id=rollout.pk, messages=[rollout_status_message(rollout)])
    return rollout


@transaction.atomic
def rollout_pause(*, rollout: Rollout, by, reason: str = "") -> Rollout:
    rollout = _locked(rollout)
    if "pause" not in _actions(rollout):
        raise RolloutStateError(f"rollout {rollout.pk} is {rollout.status}: it cannot be paused")
    rollout.status = RolloutStatus.PAUSED
    rollout.pause_until = None
    rollout.reason = reason or f"paused by {actor_label(by)}"
    return _control(rollout, action="pause", by=by, reason=reason, message="paused")


@transaction.atomic
def rollout_resume(*, rollout: Rollout, by, reason: str = "") -> Rollout:
    rollout = _locked(rollout)
    if "resume" not in _actions(rollout):
        raise RolloutStateError(f"rollout {rollout.pk} is {rollout.status}: it cannot be resumed")
    rollout.status = RolloutStatus.PROGRESSING
    rollout.pause_until = None
    rollout.reason = ""
    if rollout.phase == Phase.ANALYZE:
        rollout.last_sample_at = None  # judge fresh samples, one interval from now
        rollout.step_started_at = timezone.now()
    # As Argo resumes after Inconclusive: the templates' counts start again.
    rollout.metric_state = {
        name: {**state, "failures": 0, "inconclusive": 0}
        for name, state in (rollout.metric_state or {}).items()
    }
    return _control(rollout, action="resume", by=by, reason=reason, message="resumed")


@transaction.atomic
def rollout_promote(*, rollout: Rollout, by, reason: str = "") -> Rollout:
    rollout = _locked(rollout)
    if "promote" not in _actions(rollout):
        raise RolloutStateError(f"rollout {rollout.pk} is {rollout.status}: it cannot be promoted")
    rollout.promote_requested = True
    rollout.status = RolloutStatus.PROGRESSING
    rollout.pause_until = None
    return _control(
        rollout,
        action="promote",
        by=by,
        reason=reason,
        message="promotion requested (steps skipped)",
    )


@transaction.atomic
def rollout_abort(*, rollout: Rollout, by, reason: str = "") -> Rollout:
    """Roll back now: traffic to stable first, then the canary to zero. `by` may be a user, an
    API key or a label such as "alert:HighErrorRate"."""
    rollout = _locked(rollout)
    if "abort" not in _actions(rollout):
        raise RolloutStateError(f"rollout {rollout.pk} is {rollout.status}: it cannot be aborted")
    rollout.abort_requested = True
    rollout.reason = f"aborted by {actor_label(by)}" + (f": {reason}" if reason else "")
    rollout_event(
        rollout=rollout, kind="abort", message=rollout.reason, actor=by, data={"reason": reason}
    )
    rollout_schedule(rollout=rollout, delay=0)
    rollout.save()
    rollout_publish(rollout_id=rollout.pk, messages=[rollout_status_message(rollout)])
    return rollout


def rollout_retry(*, rollout: Rollout, by) -> Rollout:
    """A new rollout with the same tag, steps and analysis as a failed or aborted one."""
    if "retry" not in _actions(rollout):
        raise RolloutStateError(f"rollout {rollout.pk} is {rollout.status}: it cannot be retried")
    return rollout_start(
        service=rollout.service,
        image_tag=rollout.image_tag,
        by=by,
        steps=rollout.steps,
        analysis=rollout.analysis,
        match=rollout.match,
        metrics=rollout.metrics,
        retry_of=rollout,
    )


def _actions(rollout: Rollout) -> list[str]:
    from deployments.selectors import rollout_actions

    return rollout_actions(rollout)


def rollouts_resume_stuck() -> list[int]:
    """Safety net (beat): tick unfinished rollouts whose planned tick is long overdue.

    A worker killed mid-tick loses its message until the broker's visibility timeout; this
    re-enqueues those rollouts so they resume from their saved state.
    """
    from django.conf import settings
    from django.db.models import Q

    overdue = timezone.now() - timedelta(seconds=settings.ROLLOUT_STUCK_AFTER_SECONDS)
    waiting = Q(next_tick_at__lt=overdue) | (
        Q(next_tick_at__isnull=True) & ~Q(status=RolloutStatus.PAUSED)
    )
    ids = []
    for rollout in Rollout.objects.filter(status__in=UNFINISHED).filter(waiting):
        with transaction.atomic():
            rollout = _locked(rollout)
            if rollout.is_finished:
                continue
            rollout_event(
                rollout=rollout,
                kind="resume_stuck",
                message="tick overdue: resumed by the safety net",
                audit=False,
            )
            rollout_schedule(rollout=rollout, delay=0)
            rollout.save(update_fields=["tick_seq", "next_tick_at"])
            ids.append(rollout.pk)
    return ids
