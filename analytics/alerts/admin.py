"""Admin of product-metric alerts: the definition (checked as the pages check it), the state
and its recent episodes (read-only)."""

from django import forms
from django.contrib import admin

from analytics.alerts import services
from analytics.alerts.models import MetricAlert, MetricAlertEvent
from core.errors import InvalidRequest
from core.services import audit_record


class MetricAlertForm(forms.ModelForm):
    class Meta:
        model = MetricAlert
        fields = [*services.FIELDS, "name"]

    def clean(self):
        data = super().clean()
        try:
            data.update(services.check_definition({f: data.get(f) for f in services.FIELDS}))
        except InvalidRequest as exc:
            field = exc.field.split(".")[0]
            self.add_error(field if field in self.fields else None, str(exc))
        return data


class EventInline(admin.TabularInline):
    model = MetricAlertEvent
    extra = 0
    can_delete = False
    readonly_fields = ("kind", "at", "period", "value", "previous", "message", "chat")
    fields = readonly_fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(MetricAlert)
class MetricAlertAdmin(admin.ModelAdmin):
    form = MetricAlertForm
    list_display = ("name", "condition", "threshold", "state", "last_value", "last_checked_at")
    list_filter = ("state", "condition", "enabled")
    search_fields = ("name",)
    inlines = [EventInline]
    readonly_fields = (
        "state", "state_since", "last_checked_at", "last_period", "last_value", "last_previous",
        "last_error", "created_by",
    )  # fmt: skip

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        audit_record(
            actor=request.user,
            action="metric_alert.change" if change else "metric_alert.create",
            target=obj,
            detail=services.describe(obj),
        )
