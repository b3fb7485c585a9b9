"""`manage.py seed_demo`: demo data for every area, idempotent (a second run adds nothing).

Each app may contribute a `<app>/demo.py` with `seed(*, stdout)`; they run in the order of
INSTALLED_APPS, which lists the apps in dependency order.
"""

import time

from django.apps import apps
from django.core.management.base import BaseCommand

from core.modules import optional_app_module


def demo_modules() -> list:
    """Every installed app's `demo` module, in INSTALLED_APPS order."""
    found = (optional_app_module(config.name, "demo") for config in apps.get_app_configs())
    return [module for module in found if module is not None]


class Command(BaseCommand):
    help = "Create demo users, a demo API key and demo data for every area (demo mode only)."

    def handle(self, *args, **options):
        started = time.monotonic()
        for module in demo_modules():
            if hasattr(module, "seed"):
                module.seed(stdout=self.stdout)
        self.stdout.write(f"demo data ready in {time.monotonic() - started:.1f} s")
