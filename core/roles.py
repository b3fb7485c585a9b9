"""Roles (Django groups) and the checks that enforce them in views, DRF and websockets.

`engineer` operates deployments, `product` reads analytics and runs experiments, `admin` has
everything. A superuser counts as `admin`.
"""

from enum import StrEnum
from functools import wraps

from asgiref.sync import sync_to_async
from django.contrib.auth.mixins import AccessMixin
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from rest_framework.permissions import BasePermission


class Role(StrEnum):
    ENGINEER = "engineer"
    PRODUCT = "product"
    ADMIN = "admin"


ALL_ROLES = tuple(Role)


def user_roles(user) -> list[str]:
    if user is None or not getattr(user, "is_authenticated", False):
        return []
    cached = getattr(user, "_role_cache", None)
    if cached is not None:
        return cached
    if not hasattr(user, "groups"):  # machine clients (API keys) have no roles
        return []
    if user.is_superuser:
        roles = list(ALL_ROLES)
    else:
        names = set(user.groups.values_list("name", flat=True))
        roles = [r.value for r in ALL_ROLES if r.value in names]
        if Role.ADMIN in roles:
            roles = list(ALL_ROLES)
    user._role_cache = roles
    return roles


user_roles_async = sync_to_async(user_roles)


def has_role(user, *roles: str) -> bool:
    """True when the user holds any of `roles` (admin holds all); no roles given: any role."""
    held = user_roles(user)
    if not held:
        return False
    return not roles or any(r in held for r in roles)


def primary_role(user) -> str:
    held = user_roles(user)
    for role in (Role.ADMIN, Role.ENGINEER, Role.PRODUCT):
        if role in held:
            return role.value
    return ""


async def ws_user_has_role(user, *roles: str) -> bool:
    return await sync_to_async(has_role)(user, *roles)


class IsStaffRole(BasePermission):
    """Authenticated person with any role (the default for staff APIs)."""

    message = "this endpoint needs a staff login or token with a role"

    def has_permission(self, request, view) -> bool:
        return has_role(request.user)


def HasRole(*roles: str, read_roles: tuple[str, ...] | None = None) -> type[BasePermission]:  # noqa: N802
    """DRF permission: writes need one of `roles`; reads need `read_roles` (default: any role)."""

    class _HasRole(BasePermission):
        message = f"this action needs the role {' or '.join(roles)}"

        def has_permission(self, request, view) -> bool:
            if request.method in ("GET", "HEAD", "OPTIONS"):
                return has_role(request.user, *(read_roles or ()))
            return has_role(request.user, *roles)

    _HasRole.__name__ = f"HasRole_{'_'.join(roles)}"
    return _HasRole


class HasApiKey(BasePermission):
    """Machine client authenticated by `X-Api-Key`."""

    message = "this endpoint needs a valid X-Api-Key header"

    def has_permission(self, request, view) -> bool:
        from core.models import ApiKey

        return isinstance(request.auth, ApiKey)


def role_required(*roles: str):
    """View decorator: login, then one of `roles` (none given: any role)."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect(f"/login/?next={request.path}")
            if not has_role(request.user, *roles):
                raise PermissionDenied(f"needs the role {' or '.join(roles) or 'any'}")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


class RoleRequiredMixin(AccessMixin):
    """Class-based view mixin: `roles = (...)`; empty means any staff role."""

    roles: tuple[str, ...] = ()

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if not has_role(request.user, *self.roles):
            raise PermissionDenied(f"needs the role {' or '.join(self.roles) or 'any'}")
        return super().dispatch(request, *args, **kwargs)


def roles_context(request) -> dict:
    user = getattr(request, "user", None)
    roles = user_roles(user)
    from django.conf import settings

    return {
        "demo_mode": settings.DEMO_MODE,
        "user_roles": roles,
        "user_role": primary_role(user) if roles else "",
        "is_engineer": Role.ENGINEER in roles,
        "is_product": Role.PRODUCT in roles,
        "is_admin_role": Role.ADMIN in roles,
    }
