"""The alert and platform-setting models move from the core app (label `platform_site`) to
operations. Their tables stay where migration platform_site.0003 made them: state only."""

import django.db.models.deletion
from django.db import migrations, models

MOVED = ("alertrule", "alert", "platformsetting")


def content_types_follow(apps, schema_editor):
    """Permissions granted on the moved models stay granted: their content types move too."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="platform_site", model__in=MOVED).update(
        app_label="operations"
    )


def content_types_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="operations", model__in=MOVED).update(
        app_label="platform_site"
    )


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("platform_site", "0003_alerts"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    state_operations = [
        migrations.CreateModel(
            name='AlertRule',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('alertname', models.CharField(max_length=200, unique=True)),
                ('action', models.CharField(choices=[('auto_rollback', 'auto rollback'), ('scale_up', 'scale up'), ('cost_optimization', 'cost optimization'), ('record_only', 'record only')], max_length=30)),
                ('enabled', models.BooleanField(default=True, help_text='disabled rules only record alerts')),
                ('description', models.TextField(blank=True)),
                ('scale_namespace', models.CharField(default='book2video-production', help_text='scale up: Deployment namespace', max_length=63)),
                ('scale_deployment', models.CharField(default='video-processing-workers', help_text='scale up: Deployment name', max_length=63)),
                ('scale_step', models.PositiveIntegerField(default=2, help_text='scale up: replicas added')),
                ('scale_ceiling', models.PositiveIntegerField(default=50, help_text='scale up: never more replicas than this')),
                ('setting_key', models.CharField(default='ai_quality_tier', help_text='cost optimization: the platform setting stepped to its cheaper option', max_length=100)),
                ('updated_at', models.DateTimeField(auto_now=True)),
            ],
            options={
                'db_table': 'platform_site_alertrule',
                'ordering': ['alertname'],
            },
        ),
        migrations.CreateModel(
            name='PlatformSetting',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('key', models.SlugField(max_length=100, unique=True)),
                ('value', models.CharField(max_length=100)),
                ('options', models.JSONField(help_text='allowed values, most expensive first')),
                ('description', models.TextField(blank=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('updated_by_label', models.CharField(blank=True, max_length=200)),
            ],
            options={
                'db_table': 'platform_site_platformsetting',
                'ordering': ['key'],
            },
        ),
        migrations.CreateModel(
            name='Alert',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('fingerprint', models.CharField(max_length=64)),
                ('starts_at', models.DateTimeField()),
                ('alertname', models.CharField(db_index=True, max_length=200)),
                ('status', models.CharField(choices=[('firing', 'Firing'), ('resolved', 'Resolved')], max_length=10)),
                ('severity', models.CharField(blank=True, max_length=50)),
                ('labels', models.JSONField(default=dict)),
                ('annotations', models.JSONField(blank=True, default=dict)),
                ('generator_url', models.URLField(blank=True, max_length=1000)),
                ('action', models.CharField(blank=True, choices=[('auto_rollback', 'auto rollback'), ('scale_up', 'scale up'), ('cost_optimization', 'cost optimization'), ('record_only', 'record only')], max_length=30)),
                ('outcome', models.CharField(choices=[('pending', 'pending'), ('acted', 'acted'), ('nothing_to_do', 'nothing to do'), ('failed', 'failed'), ('recorded', 'recorded only')], default='pending', max_length=20)),
                ('outcome_detail', models.TextField(blank=True)),
                ('acted_at', models.DateTimeField(blank=True, null=True)),
                ('received_count', models.PositiveIntegerField(default=1)),
                ('first_received_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                ('last_received_at', models.DateTimeField(auto_now_add=True)),
                ('resolved_at', models.DateTimeField(blank=True, null=True)),
                ('previous_value', models.CharField(blank=True, max_length=100)),
                ('reverted_at', models.DateTimeField(blank=True, null=True)),
                ('reverted_by_label', models.CharField(blank=True, max_length=200)),
                ('rule', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to='operations.alertrule')),
            ],
            options={
                'db_table': 'platform_site_alert',
                'ordering': ['-first_received_at', '-id'],
                'constraints': [models.UniqueConstraint(fields=('fingerprint', 'starts_at'), name='one_alert_episode')],
            },
        ),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=state_operations),
        migrations.RunPython(content_types_follow, content_types_back),
    ]
