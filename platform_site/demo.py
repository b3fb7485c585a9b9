"""Demo users and the demo API key. They exist only in demo mode (DEBUG=1), never in production."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured

from platform_site.models import ApiKey
from platform_site.roles import Role
from platform_site.services import api_key_create

DEMO_PASSWORD = "demo"  # noqa: S105 - demo mode only, refused when DEBUG=0
DEMO_USERS = [
    ("admin", "Ada", "Admin", Role.ADMIN),
    ("engineer", "Erin", "Engineer", Role.ENGINEER),
    ("pm", "Priya", "Product", Role.PRODUCT),
]
DEMO_KEY_NAME = "demo"


def _require_demo_mode() -> None:
    if not settings.DEMO_MODE:
        raise ImproperlyConfigured("demo data is only created in demo mode (DEBUG=1)")


def seed_users() -> list:
    _require_demo_mode()
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


def demo_api_key() -> str:
    """The raw demo key, kept under var/ so every `make run` can print the same one."""
    _require_demo_mode()
    path = settings.VAR_DIR / "demo_api_key"
    if (
        path.exists()
        and ApiKey.objects.filter(
            name=DEMO_KEY_NAME, key_hash=ApiKey.hash_key(path.read_text().strip())
        ).exists()
    ):
        return path.read_text().strip()
    ApiKey.objects.filter(name=DEMO_KEY_NAME).delete()
    _key, raw = api_key_create(name=DEMO_KEY_NAME, by=None)
    path.write_text(raw)
    path.chmod(0o600)
    return raw


def seed_alerts(*, stdout) -> None:
    """A few alerts as Alertmanager would post them, acted on like the webhook does, so the
    Alerts page shows each kind of outcome on first run (idempotent)."""
    from dataclasses import replace
    from datetime import timedelta

    from django.utils import timezone

    from deployments.models import SimDeployment
    from platform_site.alerts import ReceivedAlert, alert_act, alert_receive
    from platform_site.models import Alert

    _require_demo_mode()
    if Alert.objects.exists():
        return
    now = timezone.now()
    # The product's video workers, in the simulated cluster, for the scale-up rule to act on.
    SimDeployment.objects.get_or_create(
        namespace="book2video-production",
        name="video-processing-workers",
        defaults={
            "image": "registry.book2video.internal/video-worker:v7",
            "replicas": 3,
            "changed_at": now,
            "ready_at": now,
        },
    )
    demo = [
        ("HighAICost", "9f1c0a", 180, 120, {"severity": "warning"}),
        ("HighProcessingTime", "5ca1e0", 95, 60, {"severity": "warning"}),
        ("HighErrorRate", "e44000", 40, None, {"severity": "critical", "service": "api-gateway"}),
        ("Book2videoQueueBacklog", "b4c1c0", 25, None, {"severity": "warning", "queue": "ml"}),
    ]
    for name, fingerprint, started_ago, resolved_ago, labels in demo:
        firing = ReceivedAlert(
            status="firing",
            labels={"alertname": name, **labels},
            annotations={"summary": f"{name} (demo)"},
            starts_at=now - timedelta(minutes=started_ago),
            ends_at=None,
            fingerprint=fingerprint,
        )
        alert, _ = alert_receive(received=firing)
        if alert.action:
            alert_act(alert_id=alert.pk)
        if resolved_ago is not None:
            ends_at = now - timedelta(minutes=resolved_ago)
            alert_receive(received=replace(firing, status="resolved", ends_at=ends_at))
    stdout.write(f"demo alerts: {len(demo)} on the Alerts page")
