"""Admin of dashboards: their date-range override and default flag, tiles inline (each tile's
parameters checked by its analysis' input, as the API does)."""

from django import forms
from django.contrib import admin

from analytics.dashboards.models import Dashboard, Tile
from analytics.dashboards.services import tile_params_clean
from core.errors import InvalidRequest
from core.services import audit_record


class TileForm(forms.ModelForm):
    class Meta:
        model = Tile
        fields = ["position", "analysis", "title", "params"]

    def clean(self):
        data = super().clean()
        if data.get("analysis") is not None and "params" in data:
            try:
                data["params"] = tile_params_clean(
                    analysis=data["analysis"], params=data["params"] or {}
                )
            except InvalidRequest as exc:
                field = "analysis" if exc.field == "analysis" else "params"
                self.add_error(field, str(exc))
        return data


class TileInline(admin.TabularInline):
    model = Tile
    form = TileForm
    extra = 0
    readonly_fields = ("refreshed_at", "error")


@admin.register(Dashboard)
class DashboardAdmin(admin.ModelAdmin):
    list_display = ("name", "is_default", "last_days", "date_from", "date_to", "refreshed_at")
    list_filter = ("is_default",)
    search_fields = ("name", "description")
    inlines = [TileInline]
    readonly_fields = (
        "refresh_state", "refresh_total", "refresh_done", "refresh_failed",
        "refresh_started_at", "refreshed_at", "created_by", "created_at", "updated_at",
    )  # fmt: skip

    def save_model(self, request, obj, form, change):
        if obj.is_default:  # one default: the others stop being it
            Dashboard.objects.filter(is_default=True).exclude(pk=obj.pk).update(is_default=False)
        super().save_model(request, obj, form, change)
        audit_record(
            actor=request.user,
            action="dashboard.change" if change else "dashboard.create",
            target=obj,
            detail="in admin",
        )
