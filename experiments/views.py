"""Pages of the experiments area: the list and each experiment's results."""

from django.shortcuts import get_object_or_404, render
from django.utils.dateparse import parse_datetime

from analytics.store import StoreError
from charts import with_releases
from core.errors import InvalidRequest
from core.roles import role_required
from experiments import charts
from experiments.dimensions import BUILT_IN, EXPOSURE_PREFIX, dimension_parse
from experiments.models import HOLDOUT_CONTROL, HOLDOUT_TREATMENT, Experiment, Holdout
from experiments.releases import experiment_release_markers, experiment_release_warning
from experiments.results import HOLDOUT_SIDES, experiment_results_cached, holdout_results_cached


def _dimension_choices(experiment: Experiment) -> list[tuple[str, str]]:
    """(name, label) for the picker: the experiment's registered dimensions, then the rest."""
    registered = [n for n in experiment.dimensions or [] if n not in BUILT_IN]
    built_in = [(d.name, f"{d.label} ({d.source})") for d in BUILT_IN.values()]
    return [(n, f"{n[len(EXPOSURE_PREFIX) :]} (first exposure)") for n in registered] + built_in


def _chosen_dimension(request):
    """The dimension the picker asks for (a name, or any first-exposure property), or None;
    (None, problem) for an unknown one."""
    prop = request.GET.get("property", "").strip()
    name = f"{EXPOSURE_PREFIX}{prop}" if prop else request.GET.get("dimension", "")
    if not name:
        return None, ""
    try:
        return dimension_parse(name), ""
    except InvalidRequest as exc:
        return None, exc.problem


@role_required()
def index(request):
    experiments = Experiment.objects.select_related("primary_metric", "winner").prefetch_related(
        "variants"
    )
    holdouts = Holdout.objects.prefetch_related("experiments")
    return render(
        request, "experiments/index.html", {"experiments": experiments, "holdouts": holdouts}
    )


@role_required()
def detail(request, key: str):
    experiment = get_object_or_404(
        Experiment.objects.select_related("primary_metric", "winner", "started_by"), key=key
    )
    variants = list(experiment.variants.all())
    names = {v.key: v.name or v.key for v in variants}
    dimension, dimension_problem = _chosen_dimension(request)
    context = {
        "experiment": experiment,
        "variants": variants,
        "dimension_choices": _dimension_choices(experiment),
        "dimension": dimension,
        "dimension_problem": dimension_problem,
    }
    if experiment.status == Experiment.Status.DRAFT:
        return render(request, "experiments/detail.html", context)
    try:
        result = experiment_results_cached(
            experiment=experiment, dimensions=[dimension] if dimension else []
        )
    except StoreError as exc:
        context["store_error"] = str(exc)
        return render(request, "experiments/detail.html", context)
    markers = experiment_release_markers(experiment=experiment)
    required = result["required_users_per_variant"]
    so_far = result["users_per_variant_so_far"]
    context.update(
        result=result,
        split=result["dimensions"][0] if result["dimensions"] else None,
        confidence=1 - result["alpha"],
        progress=min(100, round(100 * so_far / required)) if required else None,
        release_warning=_shown(experiment_release_warning(experiment=experiment)),
        figures=_figures(result, names, markers),
    )
    return render(request, "experiments/detail.html", context)


def _shown(warning: dict | None) -> dict | None:
    """The warning with its times as datetimes, shown in the viewer's timezone."""
    if warning is None:
        return None
    rollouts = [{**r, "at": parse_datetime(r["at"])} for r in warning["rollouts"]]
    return {**warning, "rollouts": rollouts}


def _figures(result: dict, names: dict[str, str], markers: list[dict] | None = None) -> dict:
    """A readout's figures; `markers`: releases drawn on the time series."""
    rate = charts.primary_rate_figure(result, names)
    return {
        "exposures": with_releases(charts.exposures_figure(result, names), markers or []),
        "rate": rate and with_releases(rate, markers or []),
        "lift": charts.lift_figure(result, names),
    }


@role_required()
def holdout(request, key: str):
    held = get_object_or_404(Holdout, key=key)
    context: dict = {"holdout": held}
    if held.status == Holdout.Status.DRAFT:
        return render(request, "experiments/holdout.html", context)
    try:
        result = holdout_results_cached(holdout=held)
    except StoreError as exc:
        context["store_error"] = str(exc)
        return render(request, "experiments/holdout.html", context)
    covered = []
    for e in result["experiments"]:
        rows = [r for r in result["crossing"] if r["experiment"] == e["key"]]
        general = [(r["variant"], r["users"]) for r in rows if r["grp"] == HOLDOUT_TREATMENT]
        leaked = sum(r["users"] for r in rows if r["grp"] == HOLDOUT_CONTROL)
        covered.append({**e, "general": general, "leaked": leaked})
    context.update(
        result=result,
        confidence=1 - result["alpha"],
        covered=covered,
        shipped=sum(1 for e in result["experiments"] if e["winner"]),
        held_users=result["srm"]["users"][HOLDOUT_CONTROL],
        general_users=result["srm"]["users"][HOLDOUT_TREATMENT],
        figures=_figures(result, {s.key: s.name for s in HOLDOUT_SIDES}),
    )
    return render(request, "experiments/holdout.html", context)
