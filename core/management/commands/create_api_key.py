"""`manage.py create_api_key <name> [--kind publishable|secret] [--scopes a,b]`: a key for a
machine client, printed on the last line."""

from django.core.management.base import BaseCommand, CommandError

from core.api_keys import KeyKind, Scope, parse_scopes
from core.models import ApiKey
from core.services import api_key_create


class Command(BaseCommand):
    help = (
        "Create an X-Api-Key for a machine client (publishable by default: safe inside apps; "
        "secret: servers only); the key is printed once, on the last line."
    )

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--kind", choices=KeyKind.values, default=KeyKind.PUBLISHABLE)
        parser.add_argument(
            "--scopes",
            default="",
            help=f"comma-separated, narrowing the kind's scopes: {', '.join(s.value for s in Scope)}",
        )

    def handle(self, *args, name, kind, scopes, **options):
        if ApiKey.objects.filter(name=name).exists():
            raise CommandError(
                f"an API key named {name!r} exists already; revoke it in admin or pick another name"
            )
        try:
            scope_list = parse_scopes(scopes)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        key, raw = api_key_create(name=name, kind=kind, scopes=scope_list, by=None)
        self.stdout.write(
            f"created {key.kind} API key {key.name} (prefix {key.prefix}; scopes "
            f"{', '.join(key.granted_scopes) or 'none'}); use it as X-Api-Key:"
        )
        self.stdout.write(raw)
