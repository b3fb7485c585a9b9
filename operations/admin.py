"""Admin for alert rules, received alerts (read-only) and the pipeline's run-time settings."""

from django.contrib import admin

from core.services import audit_record
from operations.models import Alert, AlertRule, PlatformSetting
from operations.services import platform_setting_set


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = ("alertname", "action", "enabled", "scale_deployment", "setting_key")
    list_filter = ("action", "enabled")
    search_fields = ("alertname", "description")
    fieldsets = (
        (None, {"fields": ("alertname", "action", "enabled", "description")}),
        (
            "scale up",
            {"fields": ("scale_namespace", "scale_deployment", "scale_step", "scale_ceiling")},
        ),
        ("cost optimization", {"fields": ("setting_key",)}),
    )

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        audit_record(
            actor=request.user,
            action="alert_rule.change" if change else "alert_rule.create",
            target=obj,
            detail=f"{obj.get_action_display()}, enabled={obj.enabled}",
        )


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    """Alerts are written by the webhook only; admin shows them."""

    list_display = ("first_received_at", "alertname", "status", "action", "outcome", "fingerprint")
    list_filter = ("status", "action", "outcome", "alertname")
    search_fields = ("alertname", "fingerprint", "outcome_detail")
    date_hierarchy = "first_received_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(PlatformSetting)
class PlatformSettingAdmin(admin.ModelAdmin):
    list_display = ("key", "value", "options", "updated_at", "updated_by_label")
    readonly_fields = ("updated_at", "updated_by_label")

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields + (("key",) if obj else ())

    def save_model(self, request, obj, form, change):
        if not change:
            super().save_model(request, obj, form, change)
            audit_record(actor=request.user, action="platform_setting.create", target=obj)
            return
        value = obj.value
        obj.value = PlatformSetting.objects.get(pk=obj.pk).value
        obj.save(update_fields=["options", "description"])
        platform_setting_set(setting=obj, value=value, by=request.user, reason="changed in admin")
