"""Writes of the shared tables: audit entries and API keys."""

import base64
import secrets

from django.contrib.auth.models import AbstractBaseUser
from django.db import models

from core.api_keys import RAW_PREFIX, KeyKind, parse_scopes
from core.models import ApiKey, AuditEntry


def actor_label(actor) -> str:
    """How an actor is named in the audit log and on the objects it changed."""
    if actor is None:
        return "system"
    if isinstance(actor, str):
        return actor
    if isinstance(actor, ApiKey):
        return actor.username
    return getattr(actor, "username", str(actor))


def audit_record(
    *,
    actor: AbstractBaseUser | ApiKey | str | None,
    action: str,
    target: models.Model | None = None,
    detail: str = "",
) -> AuditEntry:
    """Record who did `action` to `target`. `actor` is a user, an API key, or a label such as
    `alert:HighErrorRate`; None means the system itself."""
    user = actor if isinstance(actor, AbstractBaseUser) else None
    return AuditEntry.objects.create(
        actor=user,
        actor_label=actor_label(actor)[:200],
        action=action,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:300] if target is not None else "",
        detail=detail,
    )


def api_key_create(
    *,
    name: str,
    kind: str = KeyKind.PUBLISHABLE,
    scopes: list[str] | None = None,
    rate_limit_per_second: int | None = None,
    by: AbstractBaseUser | None = None,
    raw_key: str | None = None,
) -> tuple[ApiKey, str]:
    """Create a key and return it with its raw value, which is shown once and never stored.
    Publishable keys start `b2v_pk_`, secret ones `b2v_sk_` (recognisable in a leak scan)."""
    if kind not in KeyKind.values:
        raise ValueError(f"kind must be one of {', '.join(KeyKind.values)}")
    scopes = parse_scopes(",".join(scopes or []))
    raw = raw_key or f"{RAW_PREFIX[kind]}{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        name=name,
        kind=kind,
        scopes=scopes,
        rate_limit_per_second=rate_limit_per_second,
        prefix=raw[:12],
        key_hash=ApiKey.hash_key(raw),
        created_by=by,
    )
    audit_record(
        actor=by,
        action="api_key.create",
        target=key,
        detail=f"{kind}; scopes {', '.join(key.granted_scopes) or 'none'}",
    )
    return key, raw


def api_key_sdk_encryption(
    *, key: ApiKey, enabled: bool, new_secret: bool = False, by: AbstractBaseUser | None
) -> ApiKey:
    """Turn encryption of the GrowthBook SDK payload on or off for `key`. Turning it on makes
    the key's secret (16 random bytes, base64: the SDK's `decryptionKey`) if it has none;
    `new_secret` replaces it (apps holding the old one stop decrypting)."""
    from core.auth import ApiKeyAuthentication

    changes = []
    if new_secret or (enabled and not key.sdk_decryption_key):
        key.sdk_decryption_key = base64.b64encode(secrets.token_bytes(16)).decode()
        changes.append("new decryption key")
    if enabled != key.encrypt_sdk_payload:
        key.encrypt_sdk_payload = enabled
        changes.append("SDK payload encryption " + ("on" if enabled else "off"))
    if not changes:
        return key
    key.save(update_fields=["encrypt_sdk_payload", "sdk_decryption_key"])
    ApiKeyAuthentication.forget(key.key_hash)
    audit_record(actor=by, action="api_key.sdk_encryption", target=key, detail="; ".join(changes))
    return key


def api_key_revoke(*, key: ApiKey, by: AbstractBaseUser | None, reason: str = "") -> ApiKey:
    from core.auth import ApiKeyAuthentication

    key.is_active = False
    key.save(update_fields=["is_active"])
    ApiKeyAuthentication.forget(key.key_hash)
    audit_record(actor=by, action="api_key.revoke", target=key, detail=reason)
    return key
