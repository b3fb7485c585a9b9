"""Admin for experiments (product and admin roles): set up, start with a power analysis, stop."""

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from experiments.models import FROZEN_WHEN_STARTED, Experiment, Metric, Variant, variants_validate
from experiments.results import experiment_power_analysis
from experiments.services import (
    ExperimentStateError,
    experiment_check_startable,
    experiment_start,
    experiment_stop,
)


@admin.register(Metric)
class MetricAdmin(admin.ModelAdmin):
    list_display = ("key", "name", "kind", "event", "window_days", "direction", "cuped", "capping")
    list_filter = ("kind", "direction")
    search_fields = ("key", "name", "event")


class VariantFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        if any(self.errors):
            return
        rows = [
            {
                "key": f.cleaned_data["key"],
                "weight": f.cleaned_data["weight"],
                "is_control": f.cleaned_data.get("is_control", False),
            }
            for f in self.forms
            if f.cleaned_data and not f.cleaned_data.get("DELETE")
        ]
        variants_validate(rows)


class VariantInline(admin.TabularInline):
    model = Variant
    formset = VariantFormSet
    extra = 0
    min_num = 2
    fields = ("key", "name", "weight", "is_control")

    def _frozen(self, obj) -> bool:
        return obj is not None and obj.has_started

    def has_add_permission(self, request, obj=None):
        return not self._frozen(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return not self._frozen(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not self._frozen(obj) and super().has_delete_permission(request, obj)


def _power_summary(analysis: dict) -> str:
    if not analysis:
        return "computed when the experiment starts"
    if not analysis.get("ok"):
        return f"unavailable: {analysis.get('reason', '')}"
    days = analysis.get("estimated_days")
    return (
        f"baseline {analysis['baseline_mean']:.4g} over {analysis['active_users_30d']} active "
        f"users (30 days); {analysis['required_users_per_variant']:,} users per variant to "
        f"detect {analysis['minimum_detectable_effect']:.1%} at alpha {analysis['alpha']} and "
        f"power {analysis['power']:.0%}; about {days if days is not None else '?'} days "
        "at current traffic"
    )


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ("key", "name", "status", "coverage", "primary_metric", "started_at", "winner")
    list_filter = ("status",)
    search_fields = ("key", "name", "hypothesis")
    inlines = [VariantInline]
    filter_horizontal = ("secondary_metrics", "guardrail_metrics")
    actions = ["start_experiments", "stop_experiments"]
    fieldsets = (
        (None, {"fields": ("key", "name", "hypothesis", "status", "results_link")}),
        (
            "Assignment",
            {
                "fields": (
                    "coverage",
                    "hash_seed",
                    ("namespace", "namespace_start", "namespace_end"),
                    "conditions",
                )
            },
        ),
        (
            "Metrics and statistics",
            {
                "fields": (
                    "primary_metric",
                    "secondary_metrics",
                    "guardrail_metrics",
                    ("minimum_detectable_effect", "alpha", "power"),
                    ("engine", "minimum_runtime_days"),
                    "sequential_testing",
                    ("prior_mean", "prior_stddev", "proper_prior", "risk_threshold"),
                    "power_summary",
                )
            },
        ),
        (
            "Lifecycle",
            {
                "fields": (
                    ("started_at", "started_by"),
                    ("ended_at", "ended_by"),
                    "winner",
                    "conclusion",
                    "srm_flagged",
                )
            },
        ),
    )
    base_readonly = (
        "status",
        "results_link",
        "power_summary",
        "started_at",
        "started_by",
        "ended_at",
        "ended_by",
        "winner",
        "conclusion",
        "srm_flagged",
    )

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.has_started:
            return self.base_readonly + FROZEN_WHEN_STARTED
        return self.base_readonly

    @admin.display(description="power analysis")
    def power_summary(self, obj: Experiment) -> str:
        return _power_summary(obj.power_analysis)

    @admin.display(description="results")
    def results_link(self, obj: Experiment) -> str:
        if obj.pk is None:
            return "-"
        url = reverse("experiments:detail", args=[obj.key])
        return format_html('<a href="{}">results page</a>', url)

    @admin.action(description="Start selected experiments (shows the power analysis first)")
    def start_experiments(self, request, queryset):
        experiments = list(queryset)
        if request.POST.get("confirm") == "yes":
            for experiment in experiments:
                try:
                    experiment = experiment_start(experiment=experiment, by=request.user)
                except ExperimentStateError as exc:
                    self.message_user(request, str(exc), messages.ERROR)
                    continue
                self.message_user(
                    request,
                    f"started {experiment.key}: {_power_summary(experiment.power_analysis)}",
                    messages.SUCCESS,
                )
            return None
        rows = []
        for experiment in experiments:
            try:
                experiment_check_startable(experiment)
                problem, analysis = "", experiment_power_analysis(experiment)
            except ExperimentStateError as exc:
                problem, analysis = str(exc), {}
            rows.append(
                {
                    "experiment": experiment,
                    "problem": problem,
                    "analysis": analysis,
                    "summary": _power_summary(analysis) if analysis else "",
                }
            )
        context = {
            **self.admin_site.each_context(request),
            "title": "Start experiments",
            "rows": rows,
            "startable": any(not r["problem"] for r in rows),
            "queryset": queryset,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "opts": self.model._meta,
        }
        return TemplateResponse(
            request, "admin/experiments/experiment/start_confirmation.html", context
        )

    @admin.action(description="Stop selected experiments")
    def stop_experiments(self, request, queryset):
        for experiment in queryset:
            try:
                experiment_stop(experiment=experiment, by=request.user, reason="stopped in admin")
                self.message_user(request, f"stopped {experiment.key}", messages.SUCCESS)
            except ExperimentStateError as exc:
                self.message_user(request, str(exc), messages.ERROR)
