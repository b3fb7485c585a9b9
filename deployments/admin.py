from django.contrib import admin

from deployments.models import (
    AlertProvider,
    MetricSample,
    MetricTemplate,
    Rollout,
    RolloutEvent,
    RolloutHook,
    Service,
    SimDeployment,
    SimTrafficSplit,
)


class RolloutHookInline(admin.TabularInline):
    """Flagger's webhooks: pre-rollout, rollout, confirm-promotion, post-rollout, rollback."""

    model = RolloutHook
    extra = 0
    fields = ["name", "type", "url", "timeout_seconds", "retries", "metadata", "enabled"]


class MetricTemplateInline(admin.StackedInline):
    """What the service's canaries are judged by (Flagger's MetricTemplate, Argo's
    AnalysisTemplate); `clean` validates the query's placeholders and the kind's settings.
    Rollouts copy these at start: editing them changes the next rollout."""

    model = MetricTemplate
    extra = 0
    fieldsets = [
        (None, {"fields": [("name", "kind", "enabled", "dry_run"), "query", "params"]}),
        (
            "Judgement",
            {
                "fields": [
                    ("min_value", "max_value", "unit", "direction"),
                    ("stable_tolerance", "stable_tolerance_unit", "interval"),
                    ("failure_limit", "inconclusive_limit"),
                    ("effect_size_tolerance", "weight", "critical"),
                ]
            },
        ),
    ]


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ["name", "namespace", "image", "stable_tag", "replicas", "templates"]
    list_filter = ["namespace"]
    search_fields = ["name"]
    inlines = [MetricTemplateInline, RolloutHookInline]

    @admin.display(description="metric templates")
    def templates(self, obj) -> int:
        return obj.metric_templates.count()

    def save_related(self, request, form, formsets, change):
        """A new service gets the built-in templates it was not given."""
        super().save_related(request, form, formsets, change)
        if not change:
            from deployments.services import metric_templates_ensure_defaults

            metric_templates_ensure_defaults(service=form.instance)


@admin.register(AlertProvider)
class AlertProviderAdmin(admin.ModelAdmin):
    """Chat notifications of rollouts (start, pause, failure, rollback, promotion)."""

    list_display = ["name", "kind", "namespace", "service", "min_severity", "enabled"]
    list_filter = ["kind", "min_severity", "enabled"]


class RolloutEventInline(admin.TabularInline):
    model = RolloutEvent
    extra = 0
    readonly_fields = ["at", "kind", "message", "actor_label", "data"]


@admin.register(Rollout)
class RolloutAdmin(admin.ModelAdmin):
    """Read-only here: rollouts change through the engine and its controls (pages, API)."""

    list_display = ["id", "service", "image_tag", "status", "current_weight", "created_at"]
    list_filter = ["status", "service"]
    inlines = [RolloutEventInline]

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


@admin.register(MetricSample)
class MetricSampleAdmin(admin.ModelAdmin):
    list_display = ["service", "rollout", "version", "at", "error_rate", "p99_ms", "request_rate"]
    list_filter = ["version", "service"]


@admin.register(MetricTemplate)
class MetricTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "service", "kind", "min_value", "max_value", "dry_run", "enabled"]
    list_filter = ["kind", "dry_run", "enabled", "service"]
    search_fields = ["name", "service__name"]
    fieldsets = [(None, {"fields": ["service"]}), *MetricTemplateInline.fieldsets]


admin.site.register(SimDeployment)
admin.site.register(SimTrafficSplit)
