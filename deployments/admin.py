from django.contrib import admin

from deployments.models import (
    AlertProvider,
    MetricSample,
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


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ["name", "namespace", "image", "stable_tag", "replicas"]
    list_filter = ["namespace"]
    search_fields = ["name"]
    inlines = [RolloutHookInline]


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


admin.site.register(SimDeployment)
admin.site.register(SimTrafficSplit)
