"""Pages of the experiments area: the list and each experiment's results."""

from django.shortcuts import get_object_or_404, render

from analytics.store import StoreError
from core.roles import role_required
from experiments import charts
from experiments.models import Experiment
from experiments.results import experiment_results_cached


@role_required()
def index(request):
    experiments = Experiment.objects.select_related("primary_metric", "winner").prefetch_related(
        "variants"
    )
    return render(request, "experiments/index.html", {"experiments": experiments})


@role_required()
def detail(request, key: str):
    experiment = get_object_or_404(
        Experiment.objects.select_related("primary_metric", "winner", "started_by"), key=key
    )
    variants = list(experiment.variants.all())
    names = {v.key: v.name or v.key for v in variants}
    context = {"experiment": experiment, "variants": variants}
    if experiment.status == Experiment.Status.DRAFT:
        return render(request, "experiments/detail.html", context)
    try:
        result = experiment_results_cached(experiment=experiment)
    except StoreError as exc:
        context["store_error"] = str(exc)
        return render(request, "experiments/detail.html", context)
    required = result["required_users_per_variant"]
    so_far = result["users_per_variant_so_far"]
    context.update(
        result=result,
        confidence=1 - result["alpha"],
        progress=min(100, round(100 * so_far / required)) if required else None,
        figures={
            "exposures": charts.exposures_figure(result, names),
            "rate": charts.primary_rate_figure(result, names),
            "lift": charts.lift_figure(result, names),
        },
    )
    return render(request, "experiments/detail.html", context)
