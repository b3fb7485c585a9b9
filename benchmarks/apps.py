from django.apps import AppConfig


class BenchmarksConfig(AppConfig):
    """`manage.py bench <area>`; installed only where this package is present (not the image)."""

    name = "benchmarks"
    verbose_name = "Benchmarks"
