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
from deployments.metrics.templates import PLACEHOLDERS
from deployments.models import FINISHED, RolloutStatus, Service, default_analysis, default_steps

FORM_ANALYSIS_LABELS = {
    "interval_seconds": "Interval (s)",
    "samples_per_step": "Samples per step",
}
# Per metric template, what the roll-out form lets a rollout change (inputs `m-<name>-<field>`).
TEMPLATE_NUMBERS = ("min_value", "max_value", "failure_limit", "inconclusive_limit")
TEMPLATE_FLAGS = ("dry_run", "enabled")
NEW_TEMPLATE = ("name", "query", "min_value", "max_value", "direction")
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


def _number_text(value) -> str:
    return "" if value is None else f"{value:g}"


def _template_values(template: dict) -> dict:
    return {
        **{f: _number_text(template[f]) for f in TEMPLATE_NUMBERS},
        **{f: bool(template[f]) for f in TEMPLATE_FLAGS},
    }


def _form_defaults(service: Service) -> dict:
    from deployments.services import service_metric_templates

    analysis = {**default_analysis(), **(service.default_analysis or {})}
    analysis.setdefault("judge", "threshold")
    return {
        "image_tag": "",
        "steps": steps_text(service.default_steps or default_steps()),
        "match": "",
        **{k: "" if analysis.get(k) is None else analysis[k] for k in FORM_ANALYSIS},
        "templates": {t["name"]: _template_values(t) for t in service_metric_templates(service)},
        "new": dict.fromkeys(NEW_TEMPLATE, "") | {"direction": "lower"},
    }


def _template_rows(service: Service, form: dict, errors: dict) -> list[dict]:
    from deployments.services import service_metric_templates

    return [
        {
            "t": t,
            "prefix": f"m-{t['name']}-",
            "values": form["templates"].get(t["name"]) or _template_values(t),
            "errors": errors.get(f"m-{t['name']}", []),
        }
        for t in service_metric_templates(service)
    ]


def _template_overrides(service: Service, post) -> tuple[list[dict], dict, dict]:
    """What the form changes in the service's templates (only fields that differ), plus the
    new PromQL template if one was typed; and the values typed, to show again."""
    from deployments.services import service_metric_templates

    overrides, typed = [], {}
    for t in service_metric_templates(service):
        prefix = f"m-{t['name']}-"
        if f"{prefix}shown" not in post:
            continue
        values = {
            **{f: post.get(prefix + f, "").strip() for f in TEMPLATE_NUMBERS},
            **{f: prefix + f in post for f in TEMPLATE_FLAGS},
        }
        typed[t["name"]] = values
        change = {}
        for f in TEMPLATE_NUMBERS:
            text, current = values[f], t[f]
            if text == "":
                if current is not None and f in ("min_value", "max_value"):
                    change[f] = None
                continue
            try:
                same = current is not None and float(text) == float(current)
            except ValueError:
                same = False
            if not same:
                change[f] = text
        change.update({f: values[f] for f in TEMPLATE_FLAGS if values[f] != bool(t[f])})
        if change:
            overrides.append({"name": t["name"], **change})
    new = {f: post.get(f"new-{f}", "").strip() for f in NEW_TEMPLATE}
    if new["name"] or new["query"]:
        overrides.append(
            {
                "name": new["name"],
                "kind": "prometheus",
                "query": new["query"],
                "direction": new["direction"] or "lower",
                **{f: new[f] for f in ("min_value", "max_value") if new[f]},
            }
        )
    return overrides, typed, new


def _template_errors(overrides: list[dict], problems) -> dict[str, list[str]]:
    """Serializer errors of `metrics` by form row: `m-<name>` or `new` (the added template)."""
    if isinstance(problems, list) and all(isinstance(p, dict) for p in problems):
        problems = dict(enumerate(problems))
    if not isinstance(problems, dict):
        return {"metrics": [str(p) for p in problems]}
    errors: dict[str, list[str]] = {}
    for index, fields in problems.items():
        if not fields:
            continue
        override = overrides[int(index)]
        key = "new" if override.get("kind") else f"m-{override['name']}"
        for field, inner in fields.items():
            errors.setdefault(key, []).extend(f"{field}: {p}" for p in inner)
    return errors


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
        service.template_rows = _template_rows(service, service.form, service.form_errors)
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
        "placeholders": " ".join(f"{{{{ {name} }}}}" for name in PLACEHOLDERS),
        "namespace_placeholder": "{{ namespace }}",
        "version_placeholder": "{{ version }}",
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
    overrides, form["templates"], form["new"] = _template_overrides(service, request.POST)
    if overrides:
        payload["metrics"] = overrides
    data = RolloutStartInput(data=payload)
    if not data.is_valid() or errors:
        for field, problems in (data.errors or {}).items():
            if field == "metrics":
                for key, inner in _template_errors(overrides, problems).items():
                    errors.setdefault(key, []).extend(inner)
            elif isinstance(problems, dict):  # analysis: {setting: [problems]}
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
        "metric_results": selectors.rollout_metric_results(rollout),
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
