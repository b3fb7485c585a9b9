"""Demo alerts for the Alerts page (demo mode only)."""

from core.demo import require_demo_mode


def seed(*, stdout) -> None:
    """A few alerts as Alertmanager would post them, acted on like the webhook does, so the
    Alerts page shows each kind of outcome on first run (idempotent)."""
    from dataclasses import replace
    from datetime import timedelta

    from django.utils import timezone

    from deployments.models import SimDeployment
    from operations.models import Alert
    from operations.services import ReceivedAlert, alert_act, alert_receive

    require_demo_mode()
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
