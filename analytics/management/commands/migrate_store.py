"""`manage.py migrate_store`: apply the analytics store's schema migrations (idempotent)."""

from django.core.management.base import BaseCommand

from analytics.store.migrate import store_migrate


class Command(BaseCommand):
    help = "Apply pending analytics store migrations (analytics/store_migrations/*.sql)."

    def handle(self, *args, **options):
        applied = store_migrate()
        if options["verbosity"]:
            self.stdout.write(
                f"applied: {', '.join(applied)}" if applied else "analytics store is up to date"
            )
