"""`manage.py bench <area>`: benchmarks that print their figures.

Each area is a function in a module of `benchmarks/`; it takes (stdout, *, quick) and ends with
the line `<area>: <figure>, ratio <x> vs <reference>`, both sides measured in the same run.
An area's module is imported only when that area runs.
"""

import importlib

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

AREAS = {
    "store": "benchmarks.store:bench_store",
    "ops": "benchmarks.ops:bench_ops",
    "rollouts": "benchmarks.deployments:bench_rollouts",
    "console": "benchmarks.deployments:bench_console",
    "ingest": "benchmarks.analytics:bench_ingest",
    "queries": "benchmarks.analytics_queries:bench_queries",
    "queries-scale": "benchmarks.analytics_queries:bench_queries_scale",
    "generate": "benchmarks.analytics_ml:bench_generate",
    "ml": "benchmarks.analytics_ml:bench_ml",
    "experiments": "benchmarks.experiments:bench_experiments",
    "devices": "benchmarks.devices:bench_devices",
    "cohorts": "benchmarks.cohorts:bench_cohorts",
    "sdk": "benchmarks.sdk:bench_sdk",
}


def bench_area(area: str):
    """The benchmark function of an area."""
    module, function = AREAS[area].split(":")
    return getattr(importlib.import_module(module), function)


class Command(BaseCommand):
    help = "Run a benchmark area and print its figures (see README, Benchmarks)."

    def add_arguments(self, parser):
        parser.add_argument("area", help=f"one of: {', '.join(sorted(AREAS))}")
        parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
        parser.add_argument(
            "--aa",
            action="store_true",
            help="experiments: A/A simulations of both engines instead of the timings",
        )

    def handle(self, *args, area, quick, aa=False, **options):
        if area not in AREAS:
            raise CommandError(f"unknown area {area!r}; known areas: {', '.join(sorted(AREAS))}")
        if aa and area != "experiments":
            raise CommandError("--aa applies to the experiments area only")
        # Benchmarks that need users or rollouts use the configured database: bring its schema
        # up to date first, as `run` does, so a fresh checkout can bench straight away.
        call_command("migrate", interactive=False, verbosity=0)
        extra = {"aa": True} if aa else {}
        bench_area(area)(self.stdout, quick=quick, **extra)
