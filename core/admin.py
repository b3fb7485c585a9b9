"""Admin for the audit log (read-only) and the machine clients' API keys."""

from django import forms
from django.contrib import admin, messages

from core.api_keys import Scope
from core.models import ApiKey, AuditEntry
from core.services import api_key_create, api_key_revoke, api_key_sdk_encryption


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("at", "actor_label", "action", "target_type", "target_repr", "short_detail")
    list_filter = ("action", "target_type")
    search_fields = ("actor_label", "action", "target_repr", "detail")
    date_hierarchy = "at"

    @admin.display(description="detail")
    def short_detail(self, obj: AuditEntry) -> str:
        return obj.detail[:120]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


EDITABLE_FIELDS = (
    "name",
    "kind",
    "scopes",
    "is_active",
    "rate_limit_per_second",
    "encrypt_sdk_payload",
)


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(s.value, s.value) for s in Scope],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="narrows what the kind allows; none ticked: everything the kind allows "
        "(a publishable key never gets notifications or settings)",
    )

    class Meta:
        model = ApiKey
        fields = EDITABLE_FIELDS


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = (
        "name",
        "kind",
        "prefix",
        "scope_list",
        "is_active",
        "rate_limit_per_second",
        "encrypt_sdk_payload",
        "created_at",
        "last_used_at",
    )
    list_filter = ("is_active", "kind", "encrypt_sdk_payload")
    search_fields = ("name", "prefix")
    readonly_fields = (
        "prefix",
        "key_hash",
        "sdk_decryption_key",
        "created_at",
        "created_by",
        "last_used_at",
    )
    fields = (
        *EDITABLE_FIELDS,
        "sdk_decryption_key",
        "prefix",
        "created_at",
        "created_by",
        "last_used_at",
    )
    actions = ["revoke", "new_sdk_decryption_key"]

    @admin.display(description="scopes held")
    def scope_list(self, obj: ApiKey) -> str:
        return ", ".join(obj.granted_scopes) or "none"

    def get_readonly_fields(self, request, obj=None):
        # The kind is fixed at creation: a leaked publishable key must not become secret.
        return self.readonly_fields + (("name", "kind") if obj else ())

    def save_model(self, request, obj, form, change):
        encrypt = obj.encrypt_sdk_payload
        if change:
            obj.encrypt_sdk_payload = form.initial.get("encrypt_sdk_payload", False)
            super().save_model(request, obj, form, change)
            from core.auth import ApiKeyAuthentication

            ApiKeyAuthentication.forget(obj.key_hash)
            api_key_sdk_encryption(key=obj, enabled=encrypt, by=request.user)
            return
        key, raw = api_key_create(
            name=obj.name,
            kind=obj.kind,
            scopes=list(obj.scopes or []),
            rate_limit_per_second=obj.rate_limit_per_second,
            by=request.user,
        )
        if encrypt:
            api_key_sdk_encryption(key=key, enabled=True, by=request.user)
        obj.pk = key.pk
        obj.__dict__.update({k: v for k, v in key.__dict__.items() if not k.startswith("_")})
        messages.warning(request, f"New key for {key.name} (shown once, copy it now): {raw}")

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        for key in queryset.filter(is_active=True):
            api_key_revoke(key=key, by=request.user, reason="revoked in admin")
        self.message_user(request, "revoked")

    @admin.action(description="New SDK decryption key (apps holding the old one stop decrypting)")
    def new_sdk_decryption_key(self, request, queryset):
        for key in queryset:
            api_key_sdk_encryption(
                key=key, enabled=key.encrypt_sdk_payload, new_secret=True, by=request.user
            )
        self.message_user(request, "new SDK decryption keys made; give them to the apps")
