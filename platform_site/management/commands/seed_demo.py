"""`manage.py seed_demo`: demo data for every area, idempotent (a second run adds nothing).

Each app contributes a `<app>/demo.py` with `seed(*, stdout)`; they run in dependency order.
"""

import time

from django.core.management.base import BaseCommand

from platform_site.demo import demo_api_key, seed_alerts, seed_users
from platform_site.modules import optional_app_module

APP_ORDER = ["deployments", "analytics", "experiments", "devices"]


class Command(BaseCommand):
    help = "Create demo users, a demo API key and demo data for every area (demo mode only)."

    def handle(self, *args, **options):
        started = time.monotonic()
        users = seed_users()
        self.stdout.write(f"demo users: {', '.join(u.username for u in users)} (password: demo)")
        demo_api_key()
        for app in APP_ORDER:
            module = optional_app_module(app, "demo")
            if module is not None:
                module.seed(stdout=self.stdout)
        seed_alerts(stdout=self.stdout)
        self.stdout.write(f"demo data ready in {time.monotonic() - started:.1f} s")
