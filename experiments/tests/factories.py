"""Factories for metrics, experiments and variants."""

import factory

from analytics.catalog import Event
from experiments.models import Experiment, Metric, Variant


class MetricFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Metric
        django_get_or_create = ("key",)
        skip_postgeneration_save = True

    key = factory.Sequence(lambda n: f"metric-{n}")
    name = factory.LazyAttribute(lambda m: m.key.replace("-", " ").title())
    kind = Metric.Kind.CONVERSION
    event = Event.PROJECT_CREATED.value
    window_days = 7


class ExperimentFactory(factory.django.DjangoModelFactory):
    """A draft with a control and a treatment (`variants=[(key, weight), ...]` to change)."""

    class Meta:
        model = Experiment
        skip_postgeneration_save = True

    key = factory.Sequence(lambda n: f"exp-{n}")
    name = factory.LazyAttribute(lambda e: e.key.title())
    primary_metric = factory.SubFactory(MetricFactory)
    minimum_runtime_days = 0

    @factory.post_generation
    def variants(self, create, extracted, **kwargs):
        if not create:
            return
        for i, (key, weight) in enumerate(extracted or [("control", 0.5), ("treatment", 0.5)]):
            Variant.objects.create(experiment=self, key=key, weight=weight, is_control=i == 0)
