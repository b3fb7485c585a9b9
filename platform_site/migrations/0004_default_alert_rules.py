"""The three alert rules of the original design and the AI tier setting HighAICost steps down."""

from django.db import migrations

RULES = [
    (
        "HighErrorRate",
        "auto_rollback",
        "5xx ratio above 5% for 2 minutes: abort the unfinished rollout of the alert's service.",
    ),
    (
        "HighProcessingTime",
        "scale_up",
        "p95 processing time above 600 s for 5 minutes: add video worker replicas.",
    ),
    (
        "HighAICost",
        "cost_optimization",
        "AI spend up more than $500 in an hour: switch the AI tier to its cheaper option.",
    ),
]


def create_defaults(apps, schema_editor):
    AlertRule = apps.get_model("platform_site", "AlertRule")
    PlatformSetting = apps.get_model("platform_site", "PlatformSetting")
    for alertname, action, description in RULES:
        AlertRule.objects.get_or_create(
            alertname=alertname, defaults={"action": action, "description": description}
        )
    PlatformSetting.objects.get_or_create(
        key="ai_quality_tier",
        defaults={
            "value": "premium",
            "options": ["premium", "standard", "economy"],
            "description": "Model tier the video pipeline uses for scripts, images and voices.",
            "updated_by_label": "system",
        },
    )


def remove_defaults(apps, schema_editor):
    apps.get_model("platform_site", "AlertRule").objects.filter(
        alertname__in=[r[0] for r in RULES]
    ).delete()
    apps.get_model("platform_site", "PlatformSetting").objects.filter(
        key="ai_quality_tier"
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("platform_site", "0003_alerts")]

    operations = [migrations.RunPython(create_defaults, remove_defaults)]
