"""Demo users and the demo API key. They exist only in demo mode (DEBUG=1), never in production."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured

from core.api_keys import KeyKind
from core.models import ApiKey
from core.roles import Role
from core.services import api_key_create

DEMO_PASSWORD = "demo"  # noqa: S105 - demo mode only, refused when DEBUG=0
DEMO_USERS = [
    ("admin", "Ada", "Admin", Role.ADMIN),
    ("engineer", "Erin", "Engineer", Role.ENGINEER),
    ("pm", "Priya", "Product", Role.PRODUCT),
]
DEMO_KEY_NAMES = {KeyKind.PUBLISHABLE: "demo-publishable", KeyKind.SECRET: "demo-secret"}


def require_demo_mode() -> None:
    if not settings.DEMO_MODE:
        raise ImproperlyConfigured("demo data is only created in demo mode (DEBUG=1)")


def seed_users() -> list:
    require_demo_mode()
    User = get_user_model()
    users = []
    for username, first, last, role in DEMO_USERS:
        user, created = User.objects.get_or_create(
            username=username,
            defaults={
                "first_name": first,
                "last_name": last,
                "email": f"{username}@book2video.test",
            },
        )
        if created:
            user.set_password(DEMO_PASSWORD)
        user.is_staff = True
        user.is_superuser = role is Role.ADMIN
        user.save()
        user.groups.add(Group.objects.get(name=role.value))
        users.append(user)
    return users


def demo_api_key(kind: str = KeyKind.SECRET) -> str:
    """The raw demo key of `kind`, kept under var/ so every `make run` prints the same one."""
    require_demo_mode()
    name = DEMO_KEY_NAMES[kind]
    path = settings.VAR_DIR / f"demo_api_key_{kind}"
    if (
        path.exists()
        and ApiKey.objects.filter(
            name=name, kind=kind, key_hash=ApiKey.hash_key(path.read_text().strip())
        ).exists()
    ):
        return path.read_text().strip()
    ApiKey.objects.filter(name=name).delete()
    _key, raw = api_key_create(name=name, kind=kind, by=None)
    path.write_text(raw)
    path.chmod(0o600)
    return raw


def demo_key_lines() -> list[str]:
    """One labelled line per demo key, for `seed_demo` and `make run`."""
    return [
        f"demo publishable key (apps, web pages; X-Api-Key): {demo_api_key(KeyKind.PUBLISHABLE)}",
        f"demo secret key (servers only; X-Api-Key): {demo_api_key(KeyKind.SECRET)}",
    ]


def seed(*, stdout) -> None:
    """The demo logins and the demo API key (the first of `seed_demo`'s steps)."""
    users = seed_users()
    stdout.write(f"demo users: {', '.join(u.username for u in users)} (password: demo)")
    for line in demo_key_lines():
        stdout.write(line)
