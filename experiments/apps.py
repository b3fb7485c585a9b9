from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "experiments"
    verbose_name = "Experiments"

    def ready(self):
        from core import comparisons
        from experiments.comparison import compare_arms

        comparisons.register(compare_arms)  # deployments judges canaries by product events
