"""Shared tables: the audit log and the API keys of machine clients."""

import hashlib

from django.conf import settings
from django.db import models

from core.api_keys import KeyKind, key_scopes


class AuditEntry(models.Model):
    """Who did what to which object, when and why. Written only by `audit_record`."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(
        max_length=200, help_text="user name, api-key:<name>, alert:<name> or system"
    )
    action = models.CharField(max_length=100, db_index=True)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=100, blank=True)
    target_repr = models.CharField(max_length=300, blank=True)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["target_type", "target_id"])]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action} {self.target_repr}"


class ApiKey(models.Model):
    """A key for a machine client. Only the SHA-256 of the key is stored."""

    name = models.CharField(max_length=100, unique=True)
    prefix = models.CharField(
        max_length=12, help_text="first characters of the key, to recognise it"
    )
    key_hash = models.CharField(max_length=64, unique=True)
    kind = models.CharField(
        max_length=12,
        choices=KeyKind.choices,
        default=KeyKind.PUBLISHABLE,
        help_text="publishable: safe inside apps; secret: servers only (notifications, settings)",
    )
    scopes = models.JSONField(
        default=list,
        blank=True,
        help_text="narrows the kind's scopes (core.api_keys.Scope values); empty: all of them",
    )
    is_active = models.BooleanField(default=True)
    rate_limit_per_second = models.PositiveIntegerField(
        null=True, blank=True, help_text="requests per second; empty uses API_KEY_RATE_LIMIT"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    encrypt_sdk_payload = models.BooleanField(
        default=False,
        help_text="serve the GrowthBook SDK payload encrypted (encryptedFeatures); the app's SDK "
        "then needs the decryption key below",
    )
    sdk_decryption_key = models.CharField(
        max_length=44,
        blank=True,
        help_text="the SDK's decryptionKey (AES-128, base64), made when encryption is turned on",
    )

    class Meta:
        ordering = ["name"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def hash_key(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()

    # DRF treats request.user as a user: an API key client is authenticated but has no roles.
    is_authenticated = True
    is_anonymous = False
    is_superuser = False
    is_staff = False

    @property
    def username(self) -> str:
        return f"api-key:{self.name}"

    @property
    def granted_scopes(self) -> list[str]:
        return sorted(s.value for s in key_scopes(self))
