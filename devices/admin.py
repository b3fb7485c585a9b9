"""Admin of the devices area: templates are edited here; devices and deliveries are read here."""

from django.contrib import admin

from devices.models import Broadcast, Delivery, Device, Notification, NotificationTemplate


@admin.register(NotificationTemplate)
class NotificationTemplateAdmin(admin.ModelAdmin):
    list_display = ["type", "locale", "title"]
    list_filter = ["type", "locale"]
    search_fields = ["title", "body"]


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ["pk", "user_id", "platform", "app_version", "is_active", "last_seen_at"]
    list_filter = ["platform", "is_active", "deactivation_reason"]
    search_fields = ["user_id", "token", "endpoint"]
    readonly_fields = [f.name for f in Device._meta.fields]

    def has_add_permission(self, request):
        return False  # the apps register devices through the API


class DeliveryInline(admin.TabularInline):
    model = Delivery
    extra = 0
    fields = ["device", "provider", "status", "attempts", "status_code", "next_attempt_at"]
    readonly_fields = fields
    can_delete = False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["pk", "type", "user_id", "status", "send_at", "created_at"]
    list_filter = ["type", "status"]
    search_fields = ["user_id", "idempotency_key"]
    readonly_fields = [f.name for f in Notification._meta.fields]
    inlines = [DeliveryInline]

    def has_add_permission(self, request):
        return False  # the pipeline asks through the API


@admin.register(Broadcast)
class BroadcastAdmin(admin.ModelAdmin):
    """Broadcasts are created and sent on the Broadcasts page or the API (the cohort is checked
    there); admin shows them and can send a draft."""

    list_display = (
        "name",
        "cohort_name",
        "state",
        "recipients",
        "processed",
        "capped",
        "created_at",
    )
    list_filter = ("state",)
    search_fields = ("name", "title", "cohort_name")
    readonly_fields = [f.name for f in Broadcast._meta.fields]
    actions = ["send"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Send the selected draft broadcasts")
    def send(self, request, queryset):
        from devices.broadcasts import broadcast_send

        for broadcast in queryset.filter(state=Broadcast.State.DRAFT):
            broadcast_send(broadcast=broadcast, by=request.user)
