"""`manage.py bench <area>`: benchmarks that print their figures.

Each app declares its areas in `<app>/bench.py` as `AREAS = {"name": function}`; a function
takes (stdout, **options) and ends with the line `<area>: <figure>, ratio <x> vs <reference>`,
both sides measured in the same run.
"""

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from platform_site.modules import optional_app_module

APPS = ["platform_site", "deployments", "analytics", "experiments", "devices"]


def bench_areas() -> dict:
    areas = {}
    for app in APPS:
        module = optional_app_module(app, "bench")
        if module is not None:
            areas.update(module.AREAS)
    return areas


class Command(BaseCommand):
    help = "Run a benchmark area and print its figures (see README, Benchmarks)."

    def add_arguments(self, parser):
        parser.add_argument("area")
        parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")

    def handle(self, *args, area, quick, **options):
        areas = bench_areas()
        if area not in areas:
            raise CommandError(
                f"unknown area {area!r}; known areas: {', '.join(sorted(areas)) or 'none yet'}"
            )
        # Benchmarks that need users or rollouts use the configured database: bring its schema
        # up to date first, as `run` does, so a fresh checkout can bench straight away.
        call_command("migrate", interactive=False, verbosity=0)
        areas[area](self.stdout, quick=quick)
