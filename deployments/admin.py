from django.contrib import admin

from deployments.models import (
    MetricSample,
    Rollout,
    RolloutEvent,
    Service,
    SimDeployment,
    SimTrafficSplit,
)


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ["name", "namespace", "image", "stable_tag", "replicas"]
    list_filter = ["namespace"]
    search_fields = ["name"]


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
