"""Factories for services and rollouts."""

import factory

from deployments.models import Rollout, Service


class ServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Service
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"svc-{n}")
    namespace = "book2video-test"
    image = factory.LazyAttribute(lambda s: f"registry.book2video.test/{s.name}")
    replicas = 4
    stable_tag = "v1"


class RolloutFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Rollout

    service = factory.SubFactory(ServiceFactory)
    image_tag = "v2"
    from_tag = "v1"
