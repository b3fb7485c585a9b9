"""`manage.py create_api_key <name>`: a key for machine clients, printed on the last line."""

from django.core.management.base import BaseCommand, CommandError

from core.models import ApiKey
from core.services import api_key_create


class Command(BaseCommand):
    help = "Create an X-Api-Key for a machine client; the key is printed once, on the last line."

    def add_arguments(self, parser):
        parser.add_argument("name")

    def handle(self, *args, name, **options):
        if ApiKey.objects.filter(name=name).exists():
            raise CommandError(
                f"an API key named {name!r} exists already; revoke it in admin or pick another name"
            )
        key, raw = api_key_create(name=name, by=None)
        self.stdout.write(f"created API key {key.name} (prefix {key.prefix}); use it as X-Api-Key:")
        self.stdout.write(raw)
