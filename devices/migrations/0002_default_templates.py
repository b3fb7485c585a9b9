"""Default notification templates in English and Brazilian Portuguese (admins edit them later)."""

from django.db import migrations

DEFAULTS = [
    ("VIDEO_COMPLETED", "en", "Your video is ready", 'Your video "{title}" is ready to watch.'),
    ("VIDEO_COMPLETED", "pt-BR", "Seu vídeo está pronto", 'Seu vídeo "{title}" está pronto para assistir.'),
    ("PROCESSING_FAILED", "en", "We could not finish your video", 'Processing "{title}" failed. {reason}'),
    ("PROCESSING_FAILED", "pt-BR", "Não conseguimos concluir seu vídeo", 'O processamento de "{title}" falhou. {reason}'),
    ("SUBSCRIPTION_REMINDER", "en", "Your subscription renews soon", "Your {plan} plan renews on {renews_on}."),
    ("SUBSCRIPTION_REMINDER", "pt-BR", "Sua assinatura será renovada em breve", "Seu plano {plan} será renovado em {renews_on}."),
]


def seed(apps, schema_editor):
    Template = apps.get_model("devices", "NotificationTemplate")
    for type_, locale, title, body in DEFAULTS:
        Template.objects.get_or_create(
            type=type_, locale=locale, defaults={"title": title, "body": body}
        )


def unseed(apps, schema_editor):
    Template = apps.get_model("devices", "NotificationTemplate")
    for type_, locale, _title, _body in DEFAULTS:
        Template.objects.filter(type=type_, locale=locale).delete()


class Migration(migrations.Migration):
    dependencies = [("devices", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
