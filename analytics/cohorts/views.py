"""Pages of saved cohorts: the list with the create and upload forms, and one cohort with its
definition, size history, members (CSV) and links to the analyses filtered by it."""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

import charts
from analytics.cohorts import services
from analytics.cohorts.models import Cohort
from analytics.cohorts.selectors import cohort_members
from analytics.product.pages import csv_response
from analytics.store.base import StoreUnavailable
from core.errors import DomainError, InvalidRequest
from core.roles import Role, has_role, role_required

EXAMPLE = {
    "op": "and",
    "rules": [
        {"type": "event", "event": "video_rendered", "operator": "gte", "count": 3, "days": 30},
        {"type": "property", "key": "user_tier", "operator": "eq", "value": "free"},
    ],
}
MEMBERS_SHOWN = 25
CSV_MEMBERS_LIMIT = 1_000_000
_COUNT_WORDS = {"gte": "at least", "eq": "exactly", "lte": "at most"}
_PROPERTY_WORDS = {
    "eq": "is",
    "neq": "is not",
    "contains": "contains",
    "gt": ">",
    "lt": "<",
    "is_set": "is set",
    "is_not_set": "is not set",
}


def describe(definition: dict, names: dict[int, str]) -> str:
    """A definition in words, for the pages."""
    parts = []
    for rule in definition.get("rules", []):
        if "rules" in rule:
            parts.append(f"({describe(rule, names)})")
        elif rule["type"] == "event":
            did = "did" if rule["performed"] else "did not do"
            parts.append(
                f"{did} {rule['event']} {_COUNT_WORDS[rule['operator']]} {rule['count']} times "
                f"in the last {rule['days']} days"
            )
        elif rule["type"] == "property":
            value = "" if rule["operator"] in ("is_set", "is_not_set") else f" {rule['value']!r}"
            parts.append(f"{rule['key']} {_PROPERTY_WORDS[rule['operator']]}{value}")
        else:
            name = names.get(rule["cohort"], f"#{rule['cohort']}")
            parts.append(f"{'in' if rule['member'] else 'not in'} cohort {name!r}")
    return f" {definition.get('op', 'and').upper()} ".join(parts)


def _source(cohort: Cohort) -> str:
    return f"a list of user ids ({cohort.definition.get('source', 'list')})"


def _can_write(request) -> bool:
    return has_role(request.user, Role.PRODUCT, Role.ADMIN)


def _names() -> dict[int, str]:
    return dict(Cohort.objects.values_list("pk", "name"))


@role_required()
def cohorts_page(request):
    form = {"name": "", "description": "", "definition": json.dumps(EXAMPLE, indent=2)}
    errors: dict[str, str] = {}
    if request.method == "POST":
        if not _can_write(request):
            raise PermissionDenied("needs the role product or admin")
        form.update({k: request.POST.get(k, "") for k in form})
        try:
            cohort = _create(request, form)
        except InvalidRequest as exc:
            errors[exc.field.split(".")[0]] = str(exc)
        except StoreUnavailable as exc:
            errors["file"] = f"the analytics store did not answer ({exc}); try again"
        else:
            messages.success(request, f"Cohort {cohort.name!r} saved.")
            return redirect("analytics:cohort", pk=cohort.pk)
    names = _names()
    cohorts = [
        {"cohort": c, "text": describe(c.definition, names) if c.kind == "dynamic" else _source(c)}
        for c in Cohort.objects.all()
    ]
    context = {
        "cohorts": cohorts,
        "form": form,
        "errors": errors,
        "can_write": _can_write(request),
        "active": "cohorts",
    }
    return render(request, "cohorts/index.html", context, status=400 if errors else 200)


def _create(request, form) -> Cohort:
    name = form["name"].strip()
    if not name or len(name) > 100:
        raise InvalidRequest("name", "1-100 characters")
    upload = request.FILES.get("file")
    if request.POST.get("kind") == "static":
        if upload is None:
            raise InvalidRequest("file", "choose a CSV file")
        users = services.user_ids_from_csv(upload.read())
        return services.static_cohort_create(
            name=name,
            description=form["description"][:500],
            users=users,
            source="csv",
            by=request.user,
        )
    try:
        definition = json.loads(form["definition"])
    except json.JSONDecodeError as exc:
        raise InvalidRequest("definition", f"not JSON: {exc.msg} at line {exc.lineno}") from exc
    return services.cohort_create(
        name=name, description=form["description"][:500], definition=definition, by=request.user
    )


@role_required()
def cohort_page(request, pk: int):
    cohort = get_object_or_404(Cohort, pk=pk)
    if request.method == "POST":
        if not _can_write(request):
            raise PermissionDenied("needs the role product or admin")
        try:
            if request.POST.get("action") == "delete":
                services.cohort_delete(cohort=cohort, by=request.user)
                messages.success(request, f"Cohort {cohort.name!r} deleted.")
                return redirect("analytics:cohorts")
            services.cohort_compute_request(cohort=cohort, by=request.user)
            messages.success(request, "Recomputation queued.")
        except DomainError as exc:
            messages.error(request, str(exc))
        return redirect("analytics:cohort", pk=cohort.pk)
    error, members = None, []
    if cohort.version:
        try:
            if request.GET.get("csv"):
                users = cohort_members(cohort=cohort, limit=CSV_MEMBERS_LIMIT, offset=0)
                return csv_response(
                    f"cohort-{cohort.pk}-v{cohort.version}",
                    [("user_id", "user_id")],
                    [{"user_id": u} for u in users],
                )
            members = cohort_members(cohort=cohort, limit=MEMBERS_SHOWN, offset=0)
        except StoreUnavailable as exc:
            error = f"The analytics store did not answer ({exc}); try again shortly."
    history = list(cohort.sizes.all()[:100])
    chart = []
    if history:
        points = history[::-1]
        chart.append(
            {
                "id": "cohort-sizes",
                "figure": charts.figure(
                    [
                        {
                            "type": "scatter",
                            "mode": "lines+markers",
                            "name": "members",
                            "x": [h.computed_at.isoformat() for h in points],
                            "y": [h.size for h in points],
                            "line": {"color": charts.color(0)},
                        }
                    ],
                    title="Size at each computation",
                    height=300,
                    yaxis={"title": {"text": "members"}, "rangemode": "tozero"},
                ),
            }
        )
    filtered = "?" + f"in_cohort={cohort.pk}"
    context = {
        "cohort": cohort,
        "text": describe(cohort.definition, _names())
        if cohort.kind == "dynamic"
        else _source(cohort).capitalize(),
        "definition": json.dumps(cohort.definition, indent=2),
        "history": history,
        "members": members,
        "charts": chart,
        "error": error,
        "can_write": _can_write(request),
        "links": [
            ("Retention", reverse("analytics:retention") + filtered),
            ("Funnel", reverse("analytics:funnel") + filtered),
        ],
        "stats": [
            (
                "Members",
                "not computed" if cohort.size is None else f"{cohort.size:,}",
                f"version {cohort.version}",
            ),
            ("Kind", cohort.kind.capitalize(), f"by {cohort.created_by or 'system'}"),
            (
                "Computed",
                cohort.computed_at.strftime("%b %d %H:%M") if cohort.computed_at else "never",
                f"UTC, {cohort.get_state_display().lower()}",
            ),
        ],
        "active": "cohorts",
    }
    return render(request, "cohorts/detail.html", context)
