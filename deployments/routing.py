"""Websocket routes of the deployments area (gathered in config/routing.py)."""

from django.urls import path

from deployments.consumers import RolloutConsumer, RolloutListConsumer

websocket_urlpatterns = [
    path("ws/rollouts/", RolloutListConsumer.as_asgi()),
    path("ws/rollouts/<int:rollout_id>/", RolloutConsumer.as_asgi()),
]
