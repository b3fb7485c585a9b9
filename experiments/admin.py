"""Admin for experiments (product and admin roles): set up, start with a power analysis, stop."""

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from core import releases
from experiments.models import (
    FROZEN_WHEN_STARTED,
    Experiment,
    Holdout,
    Metric,
    Variant,
    variants_validate,
)
from experiments.results import experiment_power_analysis
from experiments.services import (
    ExperimentStateError,
    HoldoutStateError,
    experiment_assignment_change,
    experiment_check_startable,
    experiment_start,
    experiment_stop,
    holdout_end,
    holdout_experiments_changed,
    holdout_experiments_check,
    holdout_start,
)


@admin.register(Metric)
class MetricAdmin(admin.ModelAdmin):
    list_display = (
        "key",
        "name",
        "kind",
        "event",
        "quantile",
        "window_days",
        "direction",
        "cuped",
        "capping",
    )
    list_filter = ("kind", "direction")
    search_fields = ("key", "name", "event")


class VariantFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        if any(self.errors):
            return
        # Fields shown read-only (a started experiment's keys) come from the stored variant.
        rows = [
            {
                "key": f.cleaned_data.get("key", f.instance.key),
                "weight": f.cleaned_data.get("weight", f.instance.weight),
                "is_control": f.cleaned_data.get("is_control", f.instance.is_control),
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

    def get_readonly_fields(self, request, obj=None):
        # With sticky bucketing only the weights of a started experiment may change.
        if self._frozen(obj):
            return ("key", "name", "is_control") + (() if obj.sticky_bucketing else ("weight",))
        return ()

    def has_add_permission(self, request, obj=None):
        return not self._frozen(obj) and super().has_add_permission(request, obj)

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


class ExperimentForm(forms.ModelForm):
    depends_on_services = forms.MultipleChoiceField(
        required=False,
        label="Depends on services",
        widget=forms.CheckboxSelectMultiple,
        help_text="The readout warns when one of these services was rolled out (started, "
        "promoted or rolled back) while the experiment ran: its results may mix two versions.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        chosen = list(self.initial.get("depends_on_services") or [])
        names = dict.fromkeys([*releases.service_names(), *chosen])
        self.fields["depends_on_services"].choices = [(n, n) for n in names]

    rerandomize = forms.BooleanField(
        required=False,
        label="Re-randomize",
        help_text="Changing weights, coverage or targeting of a started experiment keeps every "
        "user already bucketed in their variant (sticky bucketing); only new users follow the "
        "change. Tick this to hash every user again (a new bucket version).",
    )
    exclude_previous = forms.BooleanField(
        required=False,
        label="Exclude users bucketed before",
        help_text="With re-randomize: users bucketed under earlier versions leave the "
        "experiment (minimum bucket version).",
    )


_WATCHED = ("coverage", "conditions")


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    form = ExperimentForm
    list_display = ("key", "name", "status", "coverage", "primary_metric", "started_at", "winner")
    list_filter = ("status",)
    search_fields = ("key", "name", "hypothesis")
    inlines = [VariantInline]
    filter_horizontal = ("secondary_metrics", "guardrail_metrics")
    actions = ["start_experiments", "stop_experiments"]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "key",
                    "name",
                    "hypothesis",
                    "depends_on_services",
                    "status",
                    "results_link",
                )
            },
        ),
        (
            "Assignment",
            {
                "fields": (
                    "coverage",
                    "hash_seed",
                    ("namespace", "namespace_start", "namespace_end"),
                    "conditions",
                    "sticky_bucketing",
                    ("bucket_version", "min_bucket_version"),
                    ("rerandomize", "exclude_previous"),
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
                    ("dimensions", "preregistered_dimensions"),
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
        "bucket_version",
        "min_bucket_version",
        "preregistered_dimensions",
    )

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.has_started:
            coverage = () if obj.sticky_bucketing else ("coverage",)
            return self.base_readonly + FROZEN_WHEN_STARTED + coverage
        return self.base_readonly

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is not None and obj.has_started and obj.sticky_bucketing:
            return fieldsets
        # Re-randomizing means something only for a started experiment with sticky buckets.
        return [
            (
                name,
                {
                    **opts,
                    "fields": [
                        f for f in opts["fields"] if f != ("rerandomize", "exclude_previous")
                    ],
                },
            )
            for name, opts in fieldsets
        ]

    def save_related(self, request, form, formsets, change):
        experiment = form.instance
        started = change and experiment.has_started
        before = {v.pk: v.weight for v in experiment.variants.all()} if started else {}
        super().save_related(request, form, formsets, change)
        if not started:
            return
        changes = [f for f in _WATCHED if f in form.changed_data]
        after = {v.pk: (v.key, v.weight) for v in experiment.variants.all()}
        if any(before.get(pk) != weight for pk, (_, weight) in after.items()):
            changes.append(
                "weights to " + ", ".join(f"{key} {weight:g}" for key, weight in after.values())
            )
        rerandomize = form.cleaned_data.get("rerandomize", False)
        exclude = form.cleaned_data.get("exclude_previous", False)
        if not (changes or rerandomize or exclude):
            return
        try:
            _, message = experiment_assignment_change(
                experiment=experiment,
                by=request.user,
                changes=changes,
                rerandomize=rerandomize,
                exclude_previous=exclude,
            )
        except ExperimentStateError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        level = messages.WARNING if changes and not (rerandomize or exclude) else messages.INFO
        self.message_user(request, message, level)

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
        _each(
            self,
            request,
            queryset,
            lambda e: experiment_stop(experiment=e, by=request.user, reason="stopped in admin"),
            lambda e: f"stopped {e.key}",
        )


class HoldoutForm(forms.ModelForm):
    class Meta:
        model = Holdout
        fields = (
            "key",
            "name",
            "description",
            "percentage",
            "hash_seed",
            "experiments",
            "ends_at",
            "metrics",
            "engine",
            "alpha",
            "sequential_testing",
        )

    def clean(self):
        cleaned = super().clean()
        experiments = cleaned.get("experiments")
        if experiments is not None and self.instance.pk:
            try:
                holdout_experiments_check(holdout=self.instance, experiments=experiments)
            except HoldoutStateError as exc:
                self.add_error("experiments", str(exc))
        return cleaned


@admin.register(Holdout)
class HoldoutAdmin(admin.ModelAdmin):
    form = HoldoutForm
    list_display = ("key", "name", "status", "percentage", "started_at", "ends_at", "ended_at")
    list_filter = ("status",)
    search_fields = ("key", "name", "description")
    filter_horizontal = ("experiments", "metrics")
    actions = ["start_holdouts", "end_holdouts"]
    fieldsets = (
        (None, {"fields": ("key", "name", "description", "status", "results_link")}),
        ("Who is held out", {"fields": ("percentage", "hash_seed", "experiments", "ends_at")}),
        ("Readout", {"fields": ("metrics", "engine", "alpha", "sequential_testing")}),
        ("History", {"fields": ("started_at", "ended_at")}),
    )

    def get_readonly_fields(self, request, obj=None):
        fixed = ("status", "results_link", "started_at", "ended_at")
        if obj is not None and obj.has_started:
            return (*fixed, "key", "percentage", "hash_seed")
        return fixed

    def save_related(self, request, form, formsets, change):
        before = set(form.instance.experiments.values_list("key", flat=True)) if change else set()
        super().save_related(request, form, formsets, change)
        holdout_experiments_changed(holdout=form.instance, by=request.user, before=before)

    @admin.display(description="results")
    def results_link(self, obj: Holdout) -> str:
        if obj.pk is None:
            return "-"
        url = reverse("experiments:holdout", args=[obj.key])
        return format_html('<a href="{}">holdout readout</a>', url)

    @admin.action(description="Start selected holdouts (hold their users out from now on)")
    def start_holdouts(self, request, queryset):
        _each(
            self,
            request,
            queryset,
            lambda h: holdout_start(holdout=h, by=request.user),
            lambda h: f"started {h.key}: {h.percentage:.1%} of users held out",
        )

    @admin.action(description="End selected holdouts (release their users)")
    def end_holdouts(self, request, queryset):
        _each(
            self,
            request,
            queryset,
            lambda h: holdout_end(holdout=h, by=request.user, reason="ended in admin"),
            lambda h: f"ended {h.key}",
        )


def _each(model_admin, request, queryset, act, done) -> None:
    """An admin action over each selected object: success or the domain error, per object."""
    for obj in queryset:
        try:
            act(obj)
            model_admin.message_user(request, done(obj), messages.SUCCESS)
        except (ExperimentStateError, HoldoutStateError) as exc:
            model_admin.message_user(request, str(exc), messages.ERROR)
