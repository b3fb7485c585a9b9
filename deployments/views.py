"""Pages of the deployments area: Services (with the roll-out form), Rollout (live), History."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from core.errors import DomainError, InvalidRequest
from core.roles import Role, has_role, role_required
from deployments import selectors
from deployments.matching import MatchError, describe, rules_from_text
from deployments.models import FINISHED, RolloutStatus, Service, default_analysis, default_steps

FORM_ANALYSIS_LABELS = {
    "interval_seconds": "Interval (s)",
    "samples_per_step": "Samples per step",
    "max_error_rate": "Max error rate (%)",
    "max_p99_ms": "Max p99 (ms)",
}
JUDGES = (("threshold", "limits only"), ("statistical", "limits + statistical (Kayenta)"))
FORM_ANALYSIS = (*FORM_ANALYSIS_LABELS, "judge")


def steps_text(steps: list[dict]) -> str:
    """ "10, 25, 50:60, 100:hold": a weight, optionally `:seconds` or `:hold` for its pause."""
    parts = []
    for step in steps:
        pause = step.get("pause")
        suffix = "" if pause in (None, 0) else ":hold" if pause == "indefinite" else f":{pause:g}"
        parts.append(f"{step['weight']}{suffix}")
    return ", ".join(parts)


def parse_steps(text: str) -> list:
    steps = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        weight, _, pause = part.partition(":")
        try:
            w = int(weight)
            if not pause:
                steps.append(w)
            elif pause.strip() == "hold":
                steps.append({"weight": w, "pause": "indefinite"})
            else:
                steps.append({"weight": w, "pause": float(pause)})
        except ValueError:
            raise InvalidRequest(
                "steps", f"{part!r} is not a weight like 25, 25:60 or 25:hold"
            ) from None
    return steps


def _form_defaults(service: Service) -> dict:
    from deployments.services import service_metric_templates

    analysis = {**default_analysis(), **(service.default_analysis or {})}
    limits = {t["name"]: t["max_value"] for t in service_metric_templates(service)}
    analysis.setdefault("max_error_rate", limits.get("error_rate"))
    analysis.setdefault("max_p99_ms", limits.get("p99_ms"))
    analysis.setdefault("judge", "threshold")
    return {
        "image_tag": "",
        "steps": steps_text(service.default_steps or default_steps()),
        "match": "",
        **{k: "" if analysis.get(k) is None else analysis[k] for k in FORM_ANALYSIS},
    }


@role_required()
def index(request):
    namespace = request.GET.get("namespace", "")
    status = request.GET.get("status", "")
    return _services_page(request, namespace=namespace, status=status)


def _services_page(
    request, *, namespace="", status="", form_for=None, form=None, errors=None, code=200
):
    services = selectors.service_list(namespace=namespace, status=status)
    for service in services:
        service.form = form if service.name == form_for else _form_defaults(service)
        service.form_errors = errors if service.name == form_for else {}
        service.analysis_inputs = [
            (name, label, service.form[name], service.form_errors.get(name, []))
            for name, label in FORM_ANALYSIS_LABELS.items()
        ]
        service.judge_errors = service.form_errors.get("judge", [])
    context = {
        "services": services,
        "namespaces": selectors.namespaces(),
        "namespace": namespace,
        "status": status,
        "statuses": [
            ("idle", "no rollout"),
            *[(s, s) for s in ("pending", "progressing", "paused")],
        ],
        "form_for": form_for,
        "judges": JUDGES,
        "any_services": Service.objects.exists(),
    }
    return render(request, "deployments/index.html", context, status=code)


@require_POST
@role_required(Role.ENGINEER)
def rollout_create(request, name):
    from deployments.api import RolloutStartInput
    from deployments.services import rollout_start

    service = Service.objects.filter(name=name).first()
    if service is None:
        messages.error(request, f"No service named {name}.")
        return redirect("deployments:index")
    fields = ("image_tag", "steps", "match", *FORM_ANALYSIS)
    form = {k: request.POST.get(k, "").strip() for k in fields}
    errors: dict[str, list[str]] = {}
    payload = {"service": name, "image_tag": form["image_tag"]}
    try:
        if form["steps"]:
            payload["steps"] = parse_steps(form["steps"])
    except InvalidRequest as exc:
        errors["steps"] = [exc.problem]
    try:
        if form["match"]:
            payload["match"] = rules_from_text(form["match"])
    except MatchError as exc:
        errors["match"] = [str(exc)]
    analysis = {k: form[k] for k in FORM_ANALYSIS if form[k] != ""}
    if analysis:
        payload["analysis"] = analysis
    data = RolloutStartInput(data=payload)
    if not data.is_valid() or errors:
        for field, problems in (data.errors or {}).items():
            if isinstance(problems, dict):  # analysis: {setting: [problems]}
                for setting, inner in problems.items():
                    errors.setdefault(setting, []).extend(str(p) for p in inner)
            else:
                errors.setdefault(field, []).extend(
                    str(p) if not isinstance(p, dict) else "; ".join(map(str, p.values()))
                    for p in (problems if isinstance(problems, list) else [problems])
                )
        return _services_page(request, form_for=name, form=form, errors=errors, code=400)
    try:
        rollout = rollout_start(by=request.user, **data.validated_data)
    except InvalidRequest as exc:
        return _services_page(
            request, form_for=name, form=form, errors={exc.field: [exc.problem]}, code=400
        )
    except DomainError as exc:
        messages.error(request, str(exc))
        return redirect("deployments:index")
    return redirect("deployments:rollout", pk=rollout.pk)


@role_required()
def rollout_detail(request, pk):
    from deployments.services import rollout_status_message

    rollout = selectors.rollout_get(pk)
    now = timezone.now()
    context = {
        "rollout": rollout,
        "service": rollout.service,
        "events": list(rollout.events.all()),
        "status_message": rollout_status_message(rollout),
        "remaining": selectors.step_remaining_seconds(rollout, now),
        "can_operate": has_role(request.user, Role.ENGINEER),
        "match": describe(rollout.match),
        "hooks": selectors.rollout_hooks(rollout),
        "thresholds": {
            t["name"]: t["max_value"]
            for t in selectors.rollout_templates(rollout)
            if t["name"] in ("error_rate", "p99_ms")
        },
    }
    return render(request, "deployments/rollout.html", context)


@role_required()
def history(request):
    service = request.GET.get("service", "")
    status = request.GET.get("status", "")
    if status and status not in RolloutStatus.values:
        status = ""
    qs = selectors.rollout_list(service=service, status=status)
    if not status:
        qs = qs.filter(status__in=FINISHED)
    page = Paginator(qs, 25).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "service": service,
        "status": status,
        "service_names": list(Service.objects.values_list("name", flat=True)),
        "statuses": [s.value for s in FINISHED],
    }
    return render(request, "deployments/history.html", context)
